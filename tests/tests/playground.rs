//! The live playground against a real broker and the three real services: settings changed
//! through `POST /control` take effect without a restart, bad input is refused with nothing
//! written, services survive losing the control topic, and `MEMBERS` scales the inventory
//! group inside one process while every order still gets exactly one outcome.

use std::time::{Duration, Instant};

use integration_tests::browser::Browser;
use integration_tests::pipeline::{Pipeline, Service, exclusive};
use integration_tests::playground::{
    create_compacted, delete_topic, end_offset, get_json, post_json, request, with_control_plane,
};
use integration_tests::shared_broker;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// Waits until `GET /control` lists the live settings of both services (their status has
/// been read), so a write can be checked against their rules.
async fn until_services_known(pipeline: &mut Pipeline) {
    let port = pipeline.http_port;
    let started = Instant::now();
    loop {
        let control = get_json(port, "/control");
        let known = |service: &str| control["live"][service]["knobs"].is_object();
        if known("producer-order") && known("inventory-consumer") {
            return;
        }
        if started.elapsed() > LIMIT {
            pipeline.fail(&format!("services never appeared in /control: {control}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn effective(metrics: &Value, service: &str, setting: &str) -> (String, String) {
    let entry = &metrics["pipeline"]["settings"][service][setting];
    (
        entry["value"].as_str().unwrap_or_default().to_owned(),
        entry["source"].as_str().unwrap_or_default().to_owned(),
    )
}

fn start_all(pipeline: &mut Pipeline) {
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);
}

/// (what, expected status, extra headers, body, a phrase the answer must contain).
type BadWrite<'a> = (&'a str, u16, Vec<(&'a str, &'a str)>, String, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_input_gets_the_right_4xx_and_nothing_is_written() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-bad", 6).await;
    let (control, _) = with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 100);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    pipeline.set(Service::Analytics, "CONTROL_TOKEN", "s3cret");
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let port = pipeline.http_port;
    let auth = [("Authorization", "Bearer s3cret")];
    let before = end_offset(&bootstrap, &control).await;

    let cases: Vec<BadWrite> = vec![
        (
            "unknown service",
            400,
            auth.to_vec(),
            r#"{"billing": {"RATE_PER_SEC": 5}}"#.into(),
            "unknown service \"billing\"",
        ),
        (
            "unknown setting",
            400,
            auth.to_vec(),
            r#"{"producer-order": {"BOOTSTRAP_SERVERS": "x:1"}}"#.into(),
            "BOOTSTRAP_SERVERS is not a live setting",
        ),
        (
            "FAIL_RATE=2 beside a good value",
            400,
            auth.to_vec(),
            r#"{"inventory-consumer": {"THROTTLE_MS": 5, "FAIL_RATE": 2}}"#.into(),
            "inventory-consumer: invalid value for FAIL_RATE: \"2\" (accepted: a number from 0 to 1)",
        ),
        (
            "not JSON",
            400,
            auth.to_vec(),
            "RATE_PER_SEC=5".into(),
            "not JSON",
        ),
        (
            "oversized",
            413,
            auth.to_vec(),
            format!(
                r#"{{"producer-order": {{"MODE": "{}"}}}}"#,
                "x".repeat(20_000)
            ),
            "larger than",
        ),
        (
            "no token",
            401,
            vec![],
            r#"{"producer-order": {"RATE_PER_SEC": 5}}"#.into(),
            "Bearer",
        ),
        (
            "wrong token",
            401,
            vec![("Authorization", "Bearer guess")],
            r#"{"producer-order": {"RATE_PER_SEC": 5}}"#.into(),
            "Bearer",
        ),
        (
            "foreign Origin",
            403,
            [auth[0], ("Origin", "http://evil.example")].to_vec(),
            r#"{"producer-order": {"RATE_PER_SEC": 5}}"#.into(),
            "Origin",
        ),
    ];
    for (what, status, extra, body, message) in cases {
        let answer = post_json(port, "/control", &body, &extra);
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        let error = answer.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(message),
            "{what}: {error:?} lacks {message:?}"
        );
    }
    let host = "evil.example:8080".to_owned();
    let rebinding = request(
        port,
        "POST",
        "/control",
        &[
            ("Host", &host),
            ("Content-Type", "application/json"),
            auth[0],
        ],
        br#"{"producer-order": {"RATE_PER_SEC": 5}}"#,
    )
    .expect("analytics answers");
    assert_eq!(
        rebinding.status, 403,
        "a Host not on the allow-list: {}",
        rebinding.body
    );
    let form_host = format!("127.0.0.1:{port}");
    let form = request(
        port,
        "POST",
        "/control",
        &[
            ("Host", &form_host),
            ("Content-Type", "application/x-www-form-urlencoded"),
            auth[0],
        ],
        b"producer-order=1",
    )
    .expect("analytics answers");
    assert_eq!(form.status, 415, "a form post: {}", form.body);

    assert_eq!(
        end_offset(&bootstrap, &control).await,
        before,
        "nothing was written"
    );
    for service in [Service::Producer, Service::Inventory, Service::Analytics] {
        assert!(pipeline.is_running(service), "{service:?} is unaffected");
    }
    let metrics = pipeline.metrics().expect("metrics");
    assert_eq!(
        effective(&metrics, "inventory-consumer", "THROTTLE_MS").1,
        "env_file"
    );

    // The same request with the token and good values is accepted and written once.
    let good = post_json(
        port,
        "/control",
        r#"{"inventory-consumer": {"THROTTLE_MS": 5}}"#,
        &auth,
    );
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(
        good.json()["accepted"]["inventory-consumer"]["THROTTLE_MS"],
        "5"
    );
    assert_eq!(end_offset(&bootstrap, &control).await, before + 1);
    pipeline
        .metrics_until("THROTTLE_MS=5 to be live", LIMIT, |m| {
            effective(m, "inventory-consumer", "THROTTLE_MS") == ("5".into(), "live".into())
        })
        .await;
    let secrets = get_json(port, "/control").to_string();
    assert!(
        !secrets.contains("s3cret"),
        "the token never appears: {secrets}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_rate_change_shows_in_metrics_within_five_seconds() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-rate", 6).await;
    with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 500);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let rate = |m: &Value| {
        m["pipeline"]["producer"]["actual_rate"]
            .as_f64()
            .unwrap_or(0.0)
    };
    pipeline
        .metrics_until("the producer at about 500/s", LIMIT, |m| {
            (400.0..=650.0).contains(&rate(m))
        })
        .await;

    let port = pipeline.http_port;
    let asked = Instant::now();
    let answer = post_json(
        port,
        "/control",
        r#"{"producer-order": {"RATE_PER_SEC": 3000}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metrics = pipeline
        .metrics_until(
            "the measured rate to follow to 3000/s",
            Duration::from_secs(5),
            |m| rate(m) >= 2400.0,
        )
        .await;
    let followed = asked.elapsed();
    assert_eq!(metrics["pipeline"]["producer"]["target_rate"], 3000.0);
    assert_eq!(
        effective(&metrics, "producer-order", "RATE_PER_SEC"),
        ("3000".into(), "live".into())
    );
    eprintln!("measured rate followed 500 -> 3000/s in {followed:?}");

    // A tombstone returns the setting to the env file's value.
    let reset = post_json(
        port,
        "/control",
        r#"{"producer-order": {"RATE_PER_SEC": null}}"#,
        &[],
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    pipeline
        .metrics_until("RATE_PER_SEC back to its start-up value", LIMIT, |m| {
            effective(m, "producer-order", "RATE_PER_SEC").1 == "environment"
                && (400.0..=650.0).contains(&rate(m))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_keep_their_settings_when_the_control_topic_is_deleted_and_obey_it_when_recreated()
{
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-lost", 6).await;
    let (control, _) = with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 100);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let port = pipeline.http_port;
    let answer = post_json(
        port,
        "/control",
        r#"{"producer-order": {"RATE_PER_SEC": 300}, "inventory-consumer": {"MAX_RETRIES": 7}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let live = |m: &Value, service: &str, setting: &str, value: &str| {
        effective(m, service, setting) == (value.into(), "live".into())
    };
    pipeline
        .metrics_until("both live values applied", LIMIT, |m| {
            live(m, "producer-order", "RATE_PER_SEC", "300")
                && live(m, "inventory-consumer", "MAX_RETRIES", "7")
        })
        .await;

    delete_topic(&bootstrap, &control).await;
    // Each service notices and says so in its status (the control topic is unreadable) ...
    let metrics = pipeline
        .metrics_until(
            "the services to report the control topic unreadable",
            LIMIT,
            |m| {
                ["producer-order", "inventory-consumer"]
                    .iter()
                    .all(|s| m["pipeline"]["services"][s]["control_unreadable"].is_string())
            },
        )
        .await;
    // ... and keeps its settings.
    assert!(
        live(&metrics, "producer-order", "RATE_PER_SEC", "300"),
        "{}",
        metrics["pipeline"]["settings"]
    );
    assert!(live(&metrics, "inventory-consumer", "MAX_RETRIES", "7"));
    for service in [Service::Producer, Service::Inventory, Service::Analytics] {
        assert!(pipeline.is_running(service), "{service:?} keeps running");
    }

    create_compacted(&bootstrap, &control).await;
    let answer = post_json(
        port,
        "/control",
        r#"{"producer-order": {"RATE_PER_SEC": 400}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metrics = pipeline
        .metrics_until("control to work again", LIMIT, |m| {
            live(m, "producer-order", "RATE_PER_SEC", "400")
        })
        .await;
    assert!(
        live(&metrics, "inventory-consumer", "MAX_RETRIES", "7"),
        "the other live value was kept"
    );
}

/// The members of the inventory group as `/metrics` shows them: partitions per member.
fn member_partitions(metrics: &Value) -> Vec<usize> {
    let mut counts: Vec<usize> = metrics["pipeline"]["inventory_group"]["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| m["partitions"].as_array().map_or(0, Vec::len))
                .collect()
        })
        .unwrap_or_default();
    counts.sort_unstable();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_one_three_one_moves_partitions_and_every_order_reconciles() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-members", 6).await;
    with_control_plane(&mut pipeline, &bootstrap).await;
    const ORDERS: u64 = 12_000;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 400);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Inventory, "FAIL_RATE", "0.05");
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let port = pipeline.http_port;
    pipeline
        .metrics_until("one member with all six partitions", LIMIT, |m| {
            member_partitions(m) == vec![6]
        })
        .await;

    let asked = Instant::now();
    let answer = post_json(
        port,
        "/control",
        r#"{"inventory-consumer": {"MEMBERS": 3}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metrics = pipeline
        .metrics_until("three members with two partitions each", LIMIT, |m| {
            member_partitions(m) == vec![2, 2, 2]
                && m["pipeline"]["inventory_group"]["state"] == "Stable"
        })
        .await;
    eprintln!(
        "MEMBERS 1 -> 3: stable with 2/2/2 after {:?}",
        asked.elapsed()
    );
    let rebalances = metrics["pipeline"]["inventory_group"]["rebalances"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        rebalances >= 3,
        "the scale-up shows in the rebalance timeline: {rebalances}"
    );

    let asked = Instant::now();
    let answer = post_json(
        port,
        "/control",
        r#"{"inventory-consumer": {"MEMBERS": 1}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    pipeline
        .metrics_until("one member with all six partitions again", LIMIT, |m| {
            member_partitions(m) == vec![6]
        })
        .await;
    eprintln!(
        "MEMBERS 3 -> 1: one member with 6 after {:?}",
        asked.elapsed()
    );
    pipeline
        .reconcile(Duration::from_secs(300), ORDERS, 0)
        .await;
    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttle_makes_the_group_lag_and_removing_it_drains_the_lag() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-throttle", 6).await;
    with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 500);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let lag = |m: &Value| {
        m["pipeline"]["inventory_group"]["lag_total"]
            .as_i64()
            .unwrap_or(-1)
    };
    let rate = |m: &Value| {
        m["pipeline"]["producer"]["actual_rate"]
            .as_f64()
            .unwrap_or(0.0)
    };
    pipeline
        .metrics_until("orders flowing with the group keeping up", LIMIT, |m| {
            rate(m) > 400.0 && (0..500).contains(&lag(m))
        })
        .await;

    // 20 ms per order on six partitions is at most 300 orders/s: behind a 500/s producer.
    let port = pipeline.http_port;
    let answer = post_json(
        port,
        "/control",
        r#"{"inventory-consumer": {"THROTTLE_MS": 20}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    pipeline
        .metrics_until("the group's lag to rise", LIMIT, |m| lag(m) > 2_000)
        .await;

    let answer = post_json(
        port,
        "/control",
        r#"{"inventory-consumer": {"THROTTLE_MS": null}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let metrics = pipeline
        .metrics_until(
            "the lag to drain under one second's worth of orders",
            LIMIT,
            |m| (0..500).contains(&lag(m)),
        )
        .await;
    assert_eq!(
        effective(&metrics, "inventory-consumer", "THROTTLE_MS").1,
        "env_file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_live_settings_but_never_replays_a_command() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-restart", 6).await;
    with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 100);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let port = pipeline.http_port;
    let producer = |m: &Value| m["pipeline"]["producer"].clone();
    let rate = |m: &Value| producer(m)["actual_rate"].as_f64().unwrap_or(0.0);

    let answer = post_json(
        port,
        "/control",
        r#"{"producer-order": {"RATE_PER_SEC": 300}}"#,
        &[],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let pause = post_json(
        port,
        "/control/commands",
        r#"{"service": "producer-order", "command": "pause"}"#,
        &[],
    );
    assert_eq!(pause.status, 200, "{}", pause.body);
    pipeline
        .metrics_until("the producer paused", LIMIT, |m| {
            producer(m)["paused"] == true && rate(m) == 0.0
        })
        .await;
    // A burst while paused is sent anyway: a one-off command, not the pacing.
    let before = pipeline.metrics().map_or(0, |m| {
        integration_tests::pipeline::count(&m, "/orders/total")
    });
    let burst = post_json(
        port,
        "/control/commands",
        r#"{"service": "producer-order", "command": "burst", "count": 2000}"#,
        &[],
    );
    assert_eq!(burst.status, 200, "{}", burst.body);
    pipeline
        .metrics_until("the burst to arrive", LIMIT, |m| {
            integration_tests::pipeline::count(m, "/orders/total") >= before + 2_000
        })
        .await;

    assert!(pipeline.stop(Service::Producer, LIMIT).success());
    pipeline.start(Service::Producer);
    let metrics = pipeline
        .metrics_until(
            "the restarted producer running at its live rate, not paused",
            LIMIT,
            |m| producer(m)["paused"] == false && (240.0..=360.0).contains(&rate(m)),
        )
        .await;
    assert_eq!(
        effective(&metrics, "producer-order", "RATE_PER_SEC"),
        ("300".into(), "live".into())
    );
    // Neither the pause nor the burst was acted on again: the orders grow at the live rate.
    let total = integration_tests::pipeline::count(&metrics, "/orders/total");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = pipeline.metrics().map_or(0, |m| {
        integration_tests::pipeline::count(&m, "/orders/total")
    });
    assert!(
        later - total < 1_500,
        "no replayed burst: {total} -> {later} in 2 s at 300/s"
    );
}

/// Waits in the page until `condition` (a JavaScript expression) holds; returns whether it did.
fn page_until(browser: &mut Browser, condition: &str) -> bool {
    browser.evaluate(&format!(
        "(async () => {{ for (let i = 0; i < 300; i++) {{ try {{ if ({condition}) return true; }} \
         catch (e) {{}} await new Promise(r => setTimeout(r, 100)); }} return false; }})()"
    )) == Value::Bool(true)
}

/// Types `value` into a knob's field and presses its button ("apply", or "reset" when
/// `value` is `None`), then waits for the page's answer line; returns that line.
fn use_knob(browser: &mut Browser, service: &str, setting: &str, value: Option<&str>) -> String {
    let button = match value {
        Some(_) => {
            format!("button[data-service='{service}'][data-name='{setting}']:not([data-reset])")
        }
        None => format!("button[data-service='{service}'][data-name='{setting}'][data-reset]"),
    };
    let typed = value.map_or(String::new(), |v| {
        format!("const f = document.getElementById('k-{service}-{setting}'); f.value = '{v}'; f.dataset.touched = '1';")
    });
    // One function per call: top-level `const`s would clash on the second call.
    browser.evaluate(&format!(
        "(() => {{ {typed} document.getElementById('message').textContent = ''; \
         document.querySelector(\"{button}\").click(); return true; }})()"
    ));
    assert!(page_until(
        browser,
        "document.getElementById('message').textContent !== ''"
    ));
    browser
        .evaluate("document.getElementById('message').textContent")
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_at_the_dashboard_changes_the_rate_and_the_throttle_and_sees_the_ripple() {
    let _slot = exclusive().await;
    let bootstrap = shared_broker().bootstrap();
    let mut pipeline = Pipeline::create(&bootstrap, "control-browser", 6).await;
    with_control_plane(&mut pipeline, &bootstrap).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 500);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", 0);
    start_all(&mut pipeline);
    until_services_known(&mut pipeline).await;
    let rate = |m: &Value| {
        m["pipeline"]["producer"]["actual_rate"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let lag = |m: &Value| {
        m["pipeline"]["inventory_group"]["lag_total"]
            .as_i64()
            .unwrap_or(-1)
    };
    pipeline
        .metrics_until("the producer at about 500/s", LIMIT, |m| {
            (400.0..=650.0).contains(&rate(m))
        })
        .await;

    let mut browser = Browser::open(&format!("http://127.0.0.1:{}/", pipeline.http_port));
    assert!(
        page_until(&mut browser, "document.body.dataset.controls === '1'"),
        "the page built its controls from GET /control"
    );
    let clicked = Instant::now();
    let answer = use_knob(&mut browser, "producer-order", "RATE_PER_SEC", Some("3000"));
    assert!(
        answer.starts_with("accepted"),
        "the page's own write passes the guards: {answer}"
    );
    pipeline
        .metrics_until(
            "the measured rate to follow to 3000/s",
            Duration::from_secs(5),
            |m| rate(m) >= 2400.0,
        )
        .await;
    eprintln!(
        "rate followed the dashboard's 500 -> 3000/s in {:?}",
        clicked.elapsed()
    );
    // The page shows it too: its produced-now figure.
    assert!(page_until(
        &mut browser,
        "Number(document.getElementById('produced-now').textContent) >= 2400"
    ));

    let answer = use_knob(&mut browser, "producer-order", "RATE_PER_SEC", Some("500"));
    assert!(answer.starts_with("accepted"), "{answer}");
    let answer = use_knob(
        &mut browser,
        "inventory-consumer",
        "THROTTLE_MS",
        Some("20"),
    );
    assert!(answer.starts_with("accepted"), "{answer}");
    pipeline
        .metrics_until("the group's lag to rise", LIMIT, |m| lag(m) > 2_000)
        .await;
    let refused = use_knob(&mut browser, "inventory-consumer", "FAIL_RATE", Some("2"));
    assert!(
        refused.contains("invalid value for FAIL_RATE: \"2\" (accepted: a number from 0 to 1)"),
        "the page shows the env file's message: {refused}"
    );
    let answer = use_knob(&mut browser, "inventory-consumer", "THROTTLE_MS", None);
    assert!(answer.starts_with("accepted"), "{answer}");
    pipeline
        .metrics_until(
            "the lag to drain under one second's worth of orders",
            LIMIT,
            |m| (0..500).contains(&lag(m)),
        )
        .await;
}
