//! A mutation's wake-up alone delivers its webhooks. Nothing in this binary calls the operator
//! dispatch route, so against `spin up` only the `webhook-dispatcher` component's Redis trigger
//! can carry the delivery (in-process, the native dispatcher's in-process wake-up does).

use crm_http_tests::receiver::{verify, Receiver};
use crm_http_tests::{TestClient, TestTenant};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_mutation_wakes_the_dispatcher_which_delivers_a_signed_webhook_with_its_length() {
    let _alone = crate::alone().await;
    let tenant = TestTenant::create("US").await;
    let client = TestClient::new(Some(
        tenant.token("webhooks:manage contacts:read contacts:write"),
    ));
    let receiver = Receiver::start().await;
    let subscription = client
        .send_json(
            Method::POST,
            "/api/v1/webhooks",
            &json!({"url": receiver.url("/hook"), "event_types": ["contact.created"]}),
        )
        .await;
    assert_eq!(subscription.status, 201, "{}", subscription.text);
    let secret = subscription.json()["secret"].as_str().unwrap().to_owned();

    let created = client
        .post_contact(&json!({"first_name": "Woken", "emails": [{"address": "woken@example.com"}]}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let message = receiver.wait_for(1, Duration::from_secs(5)).await.remove(0);

    let declared: usize = message.header("content-length").parse().unwrap();
    assert_eq!(declared, message.body.len());
    assert!(
        verify(&secret, &message),
        "the signature covers the bytes sent"
    );
    assert_eq!(message.json()["type"], "contact.created");
    assert_eq!(message.json()["data"], created.json());
}
