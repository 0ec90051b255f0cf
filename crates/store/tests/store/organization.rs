//! Teams and owners: CRUD, uniqueness, references.

use certctl_api::{CreateTeam, Email, UpdateOwner, UpdateTeam};
use certctl_store::testing::TestDb;
use certctl_store::{Listing, Paging, StoreError};

use crate::support::{T0, alice, at, audit_count, name, owner_req, rid, team_req};

const ALL: Paging = Paging::Page { page: 1, per_page: 500 };

pub async fn team_crud(db: &TestDb) {
    let store = db.store().await;
    let req = CreateTeam { id: None, name: name("Platform"), description: Some("runs the edge".into()) };
    let team = store.create_team(&req, &alice(), T0).await.unwrap();
    assert!(team.id.starts_with("team-"), "{}", team.id);
    assert_eq!(team.name, "Platform");
    assert_eq!(team.description, "runs the edge");
    assert_eq!((team.created_at, team.updated_at), (T0, T0));
    assert_eq!(store.team(&team.id).await.unwrap(), team);

    let renamed = store
        .update_team(&team.id, &UpdateTeam { name: Some(name("Edge")), description: None }, &alice(), at(60))
        .await
        .unwrap();
    assert_eq!(renamed.name, "Edge");
    assert_eq!(renamed.description, "runs the edge", "an absent field keeps its value");
    assert_eq!((renamed.created_at, renamed.updated_at), (T0, at(60)));
    let described = store
        .update_team(&team.id, &UpdateTeam { name: None, description: Some(String::new()) }, &alice(), at(61))
        .await
        .unwrap();
    assert_eq!((described.name.as_str(), described.description.as_str()), ("Edge", ""));

    let other = store.create_team(&team_req("Payments"), &alice(), at(1)).await.unwrap();
    let listed = store.list_teams(&ALL).await.unwrap();
    assert_eq!(listed.data().iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), [team.id.as_str(), &other.id]);

    store.delete_team(&team.id, &alice(), at(120)).await.unwrap();
    assert!(matches!(store.team(&team.id).await, Err(StoreError::NotFound { resource: "team", .. })));
    assert!(matches!(store.delete_team(&team.id, &alice(), at(121)).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_teams(&ALL).await.unwrap().data().len(), 1);
}

pub async fn team_duplicates_conflict(db: &TestDb) {
    let store = db.store().await;
    let chosen = CreateTeam { id: Some(rid("team-a")), name: name("A"), description: None };
    let a = store.create_team(&chosen, &alice(), T0).await.unwrap();
    assert_eq!(a.id, "team-a", "a client-chosen ID is kept");

    let same_id = CreateTeam { id: Some(rid("team-a")), name: name("Other"), description: None };
    let e = store.create_team(&same_id, &alice(), T0).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("team-a")), "{e:?}");
    let e = store.create_team(&team_req("A"), &alice(), T0).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("'A'")), "{e:?}");

    let b = store.create_team(&team_req("B"), &alice(), T0).await.unwrap();
    let rename = UpdateTeam { name: Some(name("A")), description: None };
    assert!(matches!(store.update_team(&b.id, &rename, &alice(), T0).await, Err(StoreError::Conflict(_))));
    // Keeping one's own name is not a conflict.
    let keep = UpdateTeam { name: Some(name("A")), description: Some("same".into()) };
    assert_eq!(store.update_team("team-a", &keep, &alice(), T0).await.unwrap().description, "same");
    assert_eq!(store.list_teams(&ALL).await.unwrap().data().len(), 2);
}

pub async fn team_unknown_id_is_not_found(db: &TestDb) {
    let store = db.store().await;
    let nf =
        |r: Result<_, StoreError>| matches!(r, Err(StoreError::NotFound { resource: "team", ref id }) if id == "nope");
    assert!(nf(store.team("nope").await.map(drop)));
    assert!(nf(store.update_team("nope", &UpdateTeam::default(), &alice(), T0).await.map(drop)));
    assert!(nf(store.delete_team("nope", &alice(), T0).await));
    assert!(matches!(store.owner("nope").await, Err(StoreError::NotFound { resource: "owner", .. })));
    assert!(matches!(
        store.update_owner("nope", &UpdateOwner::default(), &alice(), T0).await,
        Err(StoreError::NotFound { resource: "owner", .. })
    ));
    assert!(matches!(store.delete_owner("nope", &alice(), T0).await, Err(StoreError::NotFound { .. })));
}

pub async fn owner_crud(db: &TestDb) {
    let store = db.store().await;
    let t1 = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    let t2 = store.create_team(&team_req("Two"), &alice(), T0).await.unwrap();
    let owner = store.create_owner(&owner_req("Bob", &t1.id), &alice(), at(1)).await.unwrap();
    assert!(owner.id.starts_with("owner-"), "{}", owner.id);
    assert_eq!(
        (owner.name.as_str(), owner.email.as_str(), owner.team_id.as_str()),
        ("Bob", "bob@example.com", t1.id.as_str())
    );
    assert_eq!(store.owner(&owner.id).await.unwrap(), owner);
    let carol = store.create_owner(&owner_req("Carol", &t2.id), &alice(), at(2)).await.unwrap();

    let of_t1 = store.list_owners(Some(&t1.id), &ALL).await.unwrap();
    assert_eq!(of_t1.data(), std::slice::from_ref(&owner));
    assert_eq!(store.list_owners(None, &ALL).await.unwrap().data().len(), 2);

    let change =
        UpdateOwner { name: None, email: Some(Email::parse("bob@corp.example").unwrap()), team_id: Some(rid(&t2.id)) };
    let moved = store.update_owner(&owner.id, &change, &alice(), at(3)).await.unwrap();
    assert_eq!(
        (moved.name.as_str(), moved.email.as_str(), moved.team_id.as_str()),
        ("Bob", "bob@corp.example", t2.id.as_str())
    );
    assert_eq!((moved.created_at, moved.updated_at), (at(1), at(3)));
    assert!(store.list_owners(Some(&t1.id), &ALL).await.unwrap().data().is_empty());
    let of_t2: Vec<String> =
        store.list_owners(Some(&t2.id), &ALL).await.unwrap().data().iter().map(|o| o.id.clone()).collect();
    assert_eq!(of_t2, [owner.id.clone(), carol.id.clone()]);

    store.delete_owner(&owner.id, &alice(), at(4)).await.unwrap();
    assert!(matches!(store.owner(&owner.id).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.list_owners(None, &ALL).await.unwrap().data(), [carol]);
}

pub async fn owner_unknown_team_is_invalid_reference(db: &TestDb) {
    let store = db.store().await;
    let e = store.create_owner(&owner_req("Bob", "no-such-team"), &alice(), T0).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::InvalidReference { field: "team_id", message } if message.contains("no-such-team")),
        "{e:?}"
    );
    assert!(store.list_owners(None, &ALL).await.unwrap().data().is_empty(), "nothing is stored");

    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    let owner = store.create_owner(&owner_req("Bob", &team.id), &alice(), T0).await.unwrap();
    let change = UpdateOwner { team_id: Some(rid("no-such-team")), ..UpdateOwner::default() };
    let e = store.update_owner(&owner.id, &change, &alice(), at(1)).await.unwrap_err();
    assert!(matches!(e, StoreError::InvalidReference { field: "team_id", .. }), "{e:?}");
    assert_eq!(store.owner(&owner.id).await.unwrap(), owner, "a refused update changes nothing");
}

pub async fn referenced_team_cannot_be_deleted(db: &TestDb) {
    let store = db.store().await;
    let team = store.create_team(&team_req("One"), &alice(), T0).await.unwrap();
    let a = store.create_owner(&owner_req("A", &team.id), &alice(), T0).await.unwrap();
    let b = store.create_owner(&owner_req("B", &team.id), &alice(), T0).await.unwrap();
    let before = audit_count(&store).await;
    let e = store.delete_team(&team.id, &alice(), at(1)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Conflict(m) if m.contains("2 owners")), "{e:?}");
    assert_eq!(store.team(&team.id).await.unwrap(), team);
    assert_eq!(audit_count(&store).await, before);

    store.delete_owner(&a.id, &alice(), at(2)).await.unwrap();
    store.delete_owner(&b.id, &alice(), at(2)).await.unwrap();
    store.delete_team(&team.id, &alice(), at(3)).await.unwrap();
    assert!(store.list_teams(&ALL).await.unwrap().data().is_empty());
}

/// Both backends store the same microseconds, including before the epoch and far ahead.
pub async fn times_keep_microseconds(db: &TestDb) {
    let store = db.store().await;
    for (i, t) in [
        T0,
        time::macros::datetime!(1969-12-31 23:59:59.999999 UTC),
        time::macros::datetime!(2999-12-31 23:59:59.000001 UTC),
    ]
    .into_iter()
    .enumerate()
    {
        let team = store.create_team(&team_req(&format!("T{i}")), &alice(), t).await.unwrap();
        assert_eq!(store.team(&team.id).await.unwrap().created_at, t);
    }
    // Nanoseconds below a microsecond are dropped, never rounded up.
    let fine = T0 + time::Duration::nanoseconds(999);
    let team = store.create_team(&team_req("fine"), &alice(), fine).await.unwrap();
    assert_eq!(team.created_at, T0);
    let Listing::Page { total, .. } = store.list_teams(&ALL).await.unwrap() else { panic!("page mode") };
    assert_eq!(total, 4);
}
