//! `crm seed` writes contacts that the API reads back as valid.

use crm_http_tests::{harness, TestTenant};

#[tokio::test]
async fn seeded_contacts_read_back_through_the_api() {
    for region in ["GB", "US"] {
        let tenant = TestTenant::create(region).await;
        crm::seed::run(&harness().owner_url, tenant.id, 120)
            .await
            .expect("seeding");
        let client = tenant.client();
        let page = client.get("/api/v1/contacts?limit=200").await;
        assert_eq!(page.status, 200, "{}", page.text);
        let contacts = page.json()["data"].as_array().unwrap().clone();
        assert_eq!(contacts.len(), 120);
        for contact in &contacts {
            assert_eq!(contact["phones"][0]["region"], region, "{contact}");
            assert!(contact["lifecycle_stage"].is_string());
            assert!(contact["emails"][0]["address"]
                .as_str()
                .unwrap()
                .contains('@'));
        }
        // Seeded phones are found by the phone filter, written the national way.
        let national = contacts[0]["phones"][0]["national"].as_str().unwrap();
        let found = client
            .get(&format!(
                "/api/v1/contacts?phone={}",
                national
                    .replace(' ', "%20")
                    .replace('(', "%28")
                    .replace(')', "%29")
            ))
            .await;
        let found = found.json()["data"].as_array().unwrap().clone();
        assert!(
            found.iter().any(|c| c["id"] == contacts[0]["id"]),
            "{national}"
        );
    }
}
