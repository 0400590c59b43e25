//! inventory-consumer's command line and configuration errors, run as a real process.

use integration_tests::cli::ServiceCli;

const CLI: ServiceCli = ServiceCli {
    binary: env!("CARGO_BIN_EXE_inventory-consumer"),
    name: "inventory-consumer",
    env_file: "services/inventory_consumer/inventory.env",
};

#[test]
fn shares_the_common_command_line_behaviour() {
    CLI.check_common_behaviour();
}

#[test]
fn rejects_a_fail_rate_above_one() {
    CLI.assert_rejects(
        "FAIL_RATE",
        "1.5",
        "invalid value for FAIL_RATE: \"1.5\" (accepted: a number from 0 to 1)",
    );
}

#[test]
fn rejects_a_throttle_that_is_not_a_number() {
    CLI.assert_rejects(
        "THROTTLE_MS",
        "slow",
        "invalid value for THROTTLE_MS: \"slow\" (accepted: a whole number from 0 to 60000)",
    );
}

#[test]
fn rejects_an_unknown_offset_reset() {
    CLI.assert_rejects(
        "AUTO_OFFSET_RESET",
        "smallest",
        "invalid value for AUTO_OFFSET_RESET: \"smallest\" (accepted: one of earliest, latest, none)",
    );
}

#[test]
fn rejects_a_bad_topic_wait_flag() {
    CLI.assert_rejects(
        "TOPIC_WAIT_SKIP",
        "maybe",
        "invalid value for TOPIC_WAIT_SKIP: \"maybe\" (accepted: 1 or 0 (also true/false, yes/no, on/off))",
    );
}
