use crudauth_sea::AuthUser;

#[derive(AuthUser)]
pub struct Model(i32, String, String);

fn main() {}
