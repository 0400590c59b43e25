//! Topic administration against a real broker: idempotent creation with the asked partition
//! count and configs, and waiting for topics with a named time-out.

use std::time::Duration;

use integration_tests::{shared_broker, unique_name};
use shared::admin::{AdminError, TopicAdmin, TopicOutcome, TopicSpec};
use shared::settings::TopicWaitSettings;

async fn admin() -> TopicAdmin {
    let settings = shared_broker().connection_settings("admin-test");
    TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin connects to the test broker")
}

fn quick_wait(timeout: Duration) -> TopicWaitSettings {
    TopicWaitSettings {
        timeout,
        interval: Duration::from_millis(50),
        skip: false,
    }
}

#[tokio::test]
async fn creating_a_topic_twice_is_idempotent_and_keeps_the_asked_partition_count() {
    let mut admin = admin().await;
    let topic = unique_name("orders");
    let spec = TopicSpec::new(&topic, 6, 1);

    let first = admin
        .create_topics(std::slice::from_ref(&spec))
        .await
        .expect("first create");
    assert_eq!(first, vec![(topic.clone(), TopicOutcome::Created)]);

    let second = admin.create_topics(&[spec]).await.expect("second create");
    assert_eq!(
        second,
        vec![(
            topic.clone(),
            TopicOutcome::AlreadyExisted { partitions: 6 }
        )]
    );

    let described = admin.describe_topics(&[&topic]).await.expect("describe");
    assert_eq!(described.get(&topic), Some(&6));
}

#[tokio::test]
async fn several_topics_with_configs_are_created_in_one_call() {
    let mut admin = admin().await;
    let orders = unique_name("orders");
    let state = unique_name("inventory-state");
    let specs = [
        TopicSpec::new(&orders, 3, 1),
        TopicSpec::new(&state, 3, 1).with_config("cleanup.policy", "compact"),
    ];
    let mut outcomes = admin.create_topics(&specs).await.expect("create both");
    outcomes.sort();
    let mut expected = vec![
        (orders.clone(), TopicOutcome::Created),
        (state.clone(), TopicOutcome::Created),
    ];
    expected.sort();
    assert_eq!(outcomes, expected);
    let described = admin
        .describe_topics(&[&orders, &state])
        .await
        .expect("describe");
    assert_eq!(described.get(&orders), Some(&3));
    assert_eq!(described.get(&state), Some(&3));
}

#[tokio::test]
async fn waiting_for_a_missing_topic_times_out_naming_it_and_creates_nothing() {
    let mut admin = admin().await;
    let present = unique_name("present");
    let missing = unique_name("missing");
    admin
        .create_topics(&[TopicSpec::new(&present, 1, 1)])
        .await
        .expect("create the present topic");

    let err = admin
        .wait_for_topics(
            &[&present, &missing],
            &quick_wait(Duration::from_millis(500)),
        )
        .await
        .expect_err("the missing topic never appears");
    match &err {
        AdminError::TopicsMissing { missing: names, .. } => {
            assert_eq!(names, &vec![missing.clone()])
        }
        other => panic!("expected TopicsMissing, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&missing) && !message.contains(&present),
        "{message}"
    );
    assert!(message.contains("TOPIC_WAIT_SKIP=1"), "{message}");

    let described = admin.describe_topics(&[&missing]).await.expect("describe");
    assert!(
        described.is_empty(),
        "waiting must not auto-create the topic"
    );
}

#[tokio::test]
async fn waiting_returns_once_another_client_creates_the_topic() {
    let topic = unique_name("late");
    let mut waiter = admin().await;
    let wait_for = topic.clone();
    let waiting = tokio::spawn(async move {
        waiter
            .wait_for_topics(&[&wait_for], &quick_wait(Duration::from_secs(30)))
            .await
    });
    let mut creator = admin().await;
    creator
        .create_topics(&[TopicSpec::new(&topic, 2, 1)])
        .await
        .expect("create");
    let found = waiting.await.expect("join").expect("the topic appears");
    assert_eq!(found.get(&topic), Some(&2));
}

#[tokio::test]
async fn skipping_the_wait_returns_at_once_even_for_missing_topics() {
    let mut admin = admin().await;
    let wait = TopicWaitSettings {
        skip: true,
        ..quick_wait(Duration::from_secs(30))
    };
    let found = admin
        .wait_for_topics(&[&unique_name("never")], &wait)
        .await
        .expect("skip never fails");
    assert!(found.is_empty());
}
