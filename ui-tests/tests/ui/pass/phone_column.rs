// A phone column by name, mapped with `phone = ".."`, vouched unique with `assume_unique`,
// and listed as a login field.

mod by_name {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        #[sea_orm(unique)]
        pub phone: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod mapped {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "members")]
    #[auth(phone = "mobile", assume_unique = ["mobile"])]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        pub mobile: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod login_by_phone {
    use crudauth_sea::AuthUser;
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, AuthUser)]
    #[sea_orm(table_name = "handsets")]
    #[auth(login = ["phone", "email"])]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        #[sea_orm(unique)]
        pub email: String,
        pub password: String,
        #[sea_orm(unique)]
        pub phone: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use crudauth_sea::__private::crudauth::user::{LogicalField, UserRecord, UserRepository};
use crudauth_sea::SeaUserRepository;

fn main() {
    let a = by_name::Model {
        id: 1,
        email: "a@example.com".into(),
        password: String::new(),
        phone: None,
    };
    assert_eq!(a.phone(), None);
    let b = mapped::Model {
        id: 1,
        email: "b@example.com".into(),
        password: String::new(),
        mobile: "+46701234567".into(),
    };
    assert_eq!(b.phone(), Some("+46701234567"));
    let repo = SeaUserRepository::<login_by_phone::Model>::new(Default::default());
    let schema = repo.schema();
    assert!(schema.has(LogicalField::Phone));
    assert_eq!(schema.login[0].logical, Some(LogicalField::Phone));
    assert!(!schema.login[0].case_insensitive());
}
