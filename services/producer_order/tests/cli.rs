//! producer-order's command line and configuration errors, run as a real process.

use integration_tests::cli::ServiceCli;

const CLI: ServiceCli = ServiceCli {
    binary: env!("CARGO_BIN_EXE_producer-order"),
    name: "producer-order",
    env_file: "services/producer_order/producer.env",
};

#[test]
fn shares_the_common_command_line_behaviour() {
    CLI.check_common_behaviour();
}

#[test]
fn rejects_an_unknown_mode_naming_the_accepted_ones() {
    CLI.assert_rejects(
        "MODE",
        "sometimes",
        "invalid value for MODE: \"sometimes\" (accepted: one of burst, steady, ramp, spike)",
    );
}

#[test]
fn rejects_a_negative_total() {
    CLI.assert_rejects(
        "TOTAL_EVENTS",
        "-1",
        "invalid value for TOTAL_EVENTS: \"-1\" (accepted: a whole number from 0 to 18446744073709551615)",
    );
}

#[test]
fn rejects_an_illegal_topic_name() {
    CLI.assert_rejects(
        "ORDER_TOPIC",
        "orders/eu",
        "invalid value for ORDER_TOPIC: \"orders/eu\" (accepted: 1 to 249 characters from ASCII letters, digits, '.', '_' and '-' (not '.' or '..'))",
    );
}
