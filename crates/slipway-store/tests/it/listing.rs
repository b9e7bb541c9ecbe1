//! Listing deploys: newest first, paged with a cursor, filtered by service and environment.

use slipway_core::deploy::DeployId;
use slipway_store::{DeployQuery, Store};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, create};

async fn ids(store: &Store, query: &DeployQuery) -> Vec<i64> {
    store
        .list_deploys(query)
        .await
        .unwrap()
        .iter()
        .map(|d| d.deploy.spec.id.0)
        .collect()
}

fn query(
    service: Option<&str>,
    environment: Option<&str>,
    before: Option<DeployId>,
) -> DeployQuery {
    DeployQuery {
        service: service.map(str::to_owned),
        environment: environment.map(str::to_owned),
        before,
        limit: 2,
    }
}

#[tokio::test]
async fn list_deploys_pages_newest_first_and_filters_by_service_and_environment() {
    on_each_backend("list_deploys_pages_and_filters", async |db| {
        let store = &db.store;
        let targets = [
            ("idp", "staging"),
            ("idp", "prod"),
            ("api", "prod"),
            ("idp", "staging"),
            ("api", "staging"),
            ("idp", "prod"),
        ];
        let mut created = Vec::new();
        for (service, environment) in targets {
            created.push(create(store, None, service, environment, T0).await.0.0);
        }
        assert_eq!(created, vec![1, 2, 3, 4, 5, 6]);

        // Page through everything, two at a time, with the last id as the cursor.
        let mut pages = Vec::new();
        let mut before = None;
        for _ in 0..created.len() {
            let page = ids(store, &query(None, None, before)).await;
            let Some(&last) = page.last() else { break };
            before = Some(DeployId(last));
            pages.push(page);
        }
        assert_eq!(pages, vec![vec![6, 5], vec![4, 3], vec![2, 1]]);

        let everything = DeployQuery {
            limit: 100,
            ..DeployQuery::default()
        };
        assert_eq!(ids(store, &everything).await, vec![6, 5, 4, 3, 2, 1]);
        let idp = DeployQuery {
            service: Some("idp".to_owned()),
            ..everything.clone()
        };
        assert_eq!(ids(store, &idp).await, vec![6, 4, 2, 1]);
        let staging = DeployQuery {
            environment: Some("staging".to_owned()),
            ..everything.clone()
        };
        assert_eq!(ids(store, &staging).await, vec![5, 4, 1]);
        assert_eq!(
            ids(store, &query(Some("idp"), Some("prod"), None)).await,
            vec![6, 2]
        );
        assert_eq!(
            ids(
                store,
                &query(Some("idp"), Some("staging"), Some(DeployId(4)))
            )
            .await,
            vec![1]
        );
        assert!(ids(store, &query(Some("web"), None, None)).await.is_empty());
        let listed = store.list_deploys(&everything).await.unwrap();
        assert!(listed.iter().all(|d| d.revision == 1));
    })
    .await;
}
