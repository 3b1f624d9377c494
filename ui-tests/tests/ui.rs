//! The derive's compile errors, one file per mistake, each with its reviewed `.stderr`.
//! Regenerate with `TRYBUILD=overwrite cargo test -p crudauth-ui-tests` and read the diff.

#[test]
fn derive_auth_user() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
