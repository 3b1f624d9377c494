use crudauth_sea::AuthUser;

#[derive(AuthUser)]
pub enum Model {
    Admin { email: String },
    Member { email: String },
}

fn main() {}
