use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use super::*;

const VARIABLES: &[Variable] = &[
    Variable::new("ORDER_TOPIC", "order-events", "topic"),
    Variable::new("FAIL_RATE", "0.0", "rate"),
    Variable::new("THROTTLE_MS", "0", "delay"),
    Variable::new("MODE", "burst", "mode"),
    Variable::new("SASL_PASSWORD", "", "secret"),
];

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env_file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(contents.as_bytes()).expect("write env file");
    file
}

fn load(file: &tempfile::NamedTempFile, pairs: &[(&str, &str)]) -> SettingsSource {
    SettingsSource::load(VARIABLES, file.path(), env(pairs)).expect("settings load")
}

#[test]
fn defaults_apply_when_neither_file_nor_environment_set_a_value() {
    let file = env_file("");
    let source = load(&file, &[]);
    assert_eq!(source.raw("ORDER_TOPIC"), "order-events");
    assert_eq!(source.origin("ORDER_TOPIC"), Origin::Default);
}

#[test]
fn env_file_overrides_default_and_environment_overrides_env_file() {
    let file = env_file("ORDER_TOPIC=from-file\nFAIL_RATE=0.5\n");
    let source = load(&file, &[("FAIL_RATE", "0.25")]);
    assert_eq!(source.raw("ORDER_TOPIC"), "from-file");
    assert_eq!(source.origin("ORDER_TOPIC"), Origin::EnvFile);
    assert_eq!(source.number("FAIL_RATE", 0.0, 1.0), Ok(0.25));
    assert_eq!(source.origin("FAIL_RATE"), Origin::Environment);
    assert_eq!(source.raw("THROTTLE_MS"), "0");
}

#[test]
fn env_file_variable_points_at_another_file() {
    let default_file = env_file("ORDER_TOPIC=default-file\n");
    let other = env_file("ORDER_TOPIC=other-file\n");
    let other_path = other.path().display().to_string();
    let source = load(&default_file, &[(ENV_FILE_VARIABLE, &other_path)]);
    assert_eq!(source.raw("ORDER_TOPIC"), "other-file");
    assert_eq!(source.env_file(), &EnvFileStatus::Read(other.path().into()));
}

#[test]
fn a_missing_default_env_file_is_skipped_but_a_named_one_is_an_error() {
    let missing = std::path::Path::new("/nonexistent/streaming-kafka/service.env");
    let source = SettingsSource::load(VARIABLES, missing, env(&[])).expect("skipped");
    assert_eq!(
        source.env_file(),
        &EnvFileStatus::DefaultAbsent(missing.into())
    );

    let err = SettingsSource::load(
        VARIABLES,
        missing,
        env(&[(ENV_FILE_VARIABLE, "/nonexistent/named.env")]),
    )
    .expect_err("named file must exist");
    assert!(
        err.to_string()
            .starts_with("env file /nonexistent/named.env:"),
        "{err}"
    );
}

#[test]
fn a_malformed_env_file_names_the_file_and_line() {
    let file = env_file("ORDER_TOPIC=x\nthis is not a setting\n");
    let err = SettingsSource::load(VARIABLES, file.path(), env(&[])).expect_err("bad line");
    assert!(
        err.to_string()
            .ends_with("line 2: expected KEY=VALUE, found \"this is not a setting\""),
        "{err}"
    );
}

#[test]
fn a_number_out_of_range_names_variable_value_and_range() {
    let file = env_file("");
    let source = load(&file, &[("FAIL_RATE", "1.5")]);
    assert_eq!(
        source
            .number("FAIL_RATE", 0.0, 1.0)
            .map_err(|e| e.to_string()),
        Err("invalid value for FAIL_RATE: \"1.5\" (accepted: a number from 0 to 1)".into())
    );
}

#[test]
fn a_non_number_is_rejected_with_the_exact_message() {
    let file = env_file("");
    let source = load(&file, &[("THROTTLE_MS", "fast")]);
    assert_eq!(
        source
            .millis("THROTTLE_MS", 0, 60_000)
            .map_err(|e| e.to_string()),
        Err(
            "invalid value for THROTTLE_MS: \"fast\" (accepted: a whole number from 0 to 60000)"
                .into()
        )
    );
}

#[test]
fn a_negative_whole_number_is_rejected() {
    let file = env_file("");
    let source = load(&file, &[("THROTTLE_MS", "-5")]);
    assert!(matches!(
        source.millis("THROTTLE_MS", 0, 60_000),
        Err(SettingsError::Invalid {
            variable: "THROTTLE_MS",
            ..
        })
    ));
}

#[test]
fn not_a_number_and_infinity_are_rejected() {
    let file = env_file("");
    for bad in ["NaN", "inf"] {
        let source = load(&file, &[("FAIL_RATE", bad)]);
        assert!(source.number("FAIL_RATE", 0.0, 1.0).is_err(), "{bad}");
    }
}

#[test]
fn an_unknown_choice_lists_what_is_accepted() {
    let file = env_file("MODE=sometimes\n");
    let source = load(&file, &[]);
    assert_eq!(
        source
            .choice("MODE", &[("burst", 1), ("steady", 2)])
            .map_err(|e| e.to_string()),
        Err("invalid value for MODE: \"sometimes\" (accepted: one of burst, steady)".into())
    );
}

#[test]
fn choices_are_case_insensitive() {
    let file = env_file("");
    let source = load(&file, &[("MODE", "STEADY")]);
    assert_eq!(source.choice("MODE", &[("burst", 1), ("steady", 2)]), Ok(2));
}

#[test]
fn an_empty_required_string_is_rejected() {
    let file = env_file("ORDER_TOPIC=\n");
    let source = load(&file, &[]);
    assert_eq!(
        source.string("ORDER_TOPIC"),
        Err(SettingsError::invalid(
            "ORDER_TOPIC",
            "",
            "a non-empty string"
        ))
    );
}

#[test]
fn secrets_are_masked_in_the_effective_listing() {
    let file = env_file("SASL_PASSWORD=hunter2\n");
    let source = load(&file, &[]);
    let effective = source.effective();
    let password = effective
        .iter()
        .find(|(name, _, _)| *name == "SASL_PASSWORD")
        .expect("listed");
    assert_eq!(password.1, "********");
    assert!(!format!("{effective:?}").contains("hunter2"));
}

#[test]
fn bootstrap_servers_accept_lists_and_reject_missing_ports() {
    assert_eq!(
        parse_bootstrap_servers(" a:9092, b:9093 ,[::1]:9094"),
        Ok(vec!["a:9092".into(), "b:9093".into(), "[::1]:9094".into()])
    );
    for bad in [
        "",
        "broker",
        "broker:0",
        "broker:70000",
        ":9092",
        "a:9092,b",
    ] {
        assert!(
            matches!(
                parse_bootstrap_servers(bad),
                Err(SettingsError::Invalid {
                    variable: "BOOTSTRAP_SERVERS",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn sasl_protocols_require_a_user_name() {
    let file = env_file("");
    let mut variables = common_variables();
    variables.extend_from_slice(VARIABLES);
    let source = SettingsSource::load(
        &variables,
        file.path(),
        env(&[("SECURITY_PROTOCOL", "SASL_SSL")]),
    )
    .expect("load");
    assert_eq!(
        SecuritySettings::from_source(&source).map_err(|e| e.to_string()),
        Err("SASL_USERNAME is required when SECURITY_PROTOCOL=SASL_SSL".into())
    );
}

#[test]
fn topic_wait_settings_are_typed() {
    let file = env_file("");
    let source = SettingsSource::load(
        &TopicWaitSettings::variables(),
        file.path(),
        env(&[
            ("TOPIC_WAIT_SKIP", "yes"),
            ("TOPIC_WAIT_INTERVAL_MS", "250"),
        ]),
    )
    .expect("load");
    assert_eq!(
        TopicWaitSettings::from_source(&source),
        Ok(TopicWaitSettings {
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(250),
            skip: true,
        })
    );
}
