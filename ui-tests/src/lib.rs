//! Compile-fail tests for `#[derive(AuthUser)]`; the cases live in `tests/ui/`.
