//! analytics-consumer's command line and configuration errors, run as a real process.

use integration_tests::cli::ServiceCli;

const CLI: ServiceCli = ServiceCli {
    binary: env!("CARGO_BIN_EXE_analytics-consumer"),
    name: "analytics-consumer",
    env_file: "services/analytics_consumer/analytics.env",
};

#[test]
fn shares_the_common_command_line_behaviour() {
    CLI.check_common_behaviour();
}

#[test]
fn rejects_a_port_out_of_range() {
    CLI.assert_rejects(
        "HTTP_PORT",
        "70000",
        "invalid value for HTTP_PORT: \"70000\" (accepted: a whole number from 1 to 65535)",
    );
}

#[test]
fn rejects_a_host_that_is_not_an_address() {
    CLI.assert_rejects(
        "HTTP_HOST",
        "every interface",
        "invalid value for HTTP_HOST: \"every interface\" (accepted: an IPv4 or IPv6 address such as 0.0.0.0)",
    );
}

#[test]
fn rejects_a_zero_window() {
    CLI.assert_rejects(
        "WINDOW_SEC",
        "0",
        "invalid value for WINDOW_SEC: \"0\" (accepted: a whole number from 1 to 3600)",
    );
}

#[test]
fn rejects_an_instance_id_with_illegal_characters() {
    CLI.assert_rejects(
        "GROUP_INSTANCE_ID",
        "analytics 1",
        "invalid value for GROUP_INSTANCE_ID: \"analytics 1\" (accepted: 1 to 249 characters from ASCII letters, digits, '.', '_' and '-' (not '.' or '..'))",
    );
}

#[test]
fn an_empty_instance_id_means_a_dynamic_member() {
    let output = CLI.run(&["--check-config"], &[("GROUP_INSTANCE_ID", "")]);
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).contains("GROUP_INSTANCE_ID=  # environment"));
}
