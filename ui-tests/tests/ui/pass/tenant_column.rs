// A tenant column of every accepted shape (a string, a nullable string, an integer, a
// nullable integer), mapped explicitly; a column named `tenant` is no tenant unless mapped.

mod text {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "users")]
    #[auth(tenant = "org")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        pub org: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod nullable_integer {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "staff")]
    #[auth(tenant = "org_id")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        pub org_id: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod by_name_only {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "guests")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        pub tenant: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use crudauth_sea::__private::crudauth::user::{LogicalField, UserRecord, UserRepository};
use crudauth_sea::SeaUserRepository;

fn main() {
    let a = text::Model { id: 1, email: "a@example.com".into(), password: String::new(), org: "acme".into() };
    assert_eq!(a.tenant().as_deref(), Some("acme"));
    let empty = text::Model { org: String::new(), ..a };
    assert_eq!(empty.tenant(), None);
    let b = nullable_integer::Model { id: 1, email: "b@example.com".into(), password: String::new(), org_id: Some(42) };
    assert_eq!(b.tenant().as_deref(), Some("42"));
    let c = nullable_integer::Model { org_id: None, ..b };
    assert_eq!(c.tenant(), None);
    let repo = SeaUserRepository::<nullable_integer::Model>::new(Default::default());
    assert!(repo.schema().has(LogicalField::Tenant));
    let repo = SeaUserRepository::<by_name_only::Model>::new(Default::default());
    assert!(!repo.schema().has(LogicalField::Tenant));
    let d = by_name_only::Model { id: 1, email: "d@example.com".into(), password: String::new(), tenant: true };
    assert_eq!(d.tenant(), None);
}
