//! Checks every service's command line the same way: `--version`, `--help`, `--check-config`
//! (effective values, secrets masked), exit 2 with the exact message for bad values, and that
//! the service's env file documents every variable it reads.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// One service binary under test.
pub struct ServiceCli<'a> {
    pub binary: &'a str,
    pub name: &'a str,
    pub env_file: &'a str,
}

impl ServiceCli<'_> {
    /// Runs the binary from the workspace root with only the given environment.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(self.binary)
            .args(args)
            .current_dir(super::workspace_root())
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("the service binary runs")
    }

    /// The variables `--help` lists.
    pub fn documented_variables(&self) -> BTreeSet<String> {
        let output = self.run(&["--help"], &[]);
        assert_eq!(output.status.code(), Some(0), "--help exits 0");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.lines()
            .skip_while(|line| !line.contains("Variables:"))
            .skip(1)
            .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
            .collect()
    }

    /// The variables the env file sets, each checked to have a comment line right above it.
    pub fn env_file_variables(&self) -> BTreeSet<String> {
        let text = std::fs::read_to_string(super::workspace_root().join(self.env_file))
            .expect("the env file exists");
        let lines: Vec<&str> = text.lines().collect();
        let mut found = BTreeSet::new();
        for (index, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.split('=').next().unwrap_or_default().trim().to_owned();
            let documented = index > 0 && lines[index - 1].trim_start().starts_with('#');
            assert!(
                documented,
                "{}: {key} has no comment line above it",
                self.env_file
            );
            found.insert(key);
        }
        found
    }

    /// Asserts a bad value exits 2 and stderr carries exactly this message.
    pub fn assert_rejects(&self, variable: &str, value: &str, message: &str) {
        let output = self.run(&["--check-config"], &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value:?}: {stderr}"
        );
        assert_eq!(
            stderr.trim_end(),
            format!("{}: configuration error: {message}", self.name),
            "{variable}={value:?}"
        );
    }

    /// The checks every service must pass.
    pub fn check_common_behaviour(&self) {
        let version = self.run(&["--version"], &[]);
        assert_eq!(version.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{} {}", self.name, env!("CARGO_PKG_VERSION"))
        );

        let usage = self.run(&["--no-such-flag"], &[]);
        assert_eq!(usage.status.code(), Some(2), "an unknown flag exits 2");

        assert_eq!(
            self.documented_variables(),
            self.env_file_variables(),
            "{} must set and document exactly the variables the service reads",
            self.env_file
        );

        let checked = self.run(&["--check-config"], &[("SASL_PASSWORD", "hunter2")]);
        let stdout = String::from_utf8_lossy(&checked.stdout);
        assert_eq!(checked.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("SASL_PASSWORD=********  # environment"),
            "{stdout}"
        );
        assert!(!stdout.contains("hunter2"), "the password is masked");
        assert!(
            stdout.contains(&format!("# env file: {}", self.env_file)),
            "{stdout}"
        );

        self.assert_rejects(
            "BOOTSTRAP_SERVERS",
            "broker-without-port",
            "invalid value for BOOTSTRAP_SERVERS: \"broker-without-port\" (accepted: a comma-separated list of host:port with ports from 1 to 65535)",
        );
        self.assert_rejects(
            "LOG_FORMAT",
            "yaml",
            "invalid value for LOG_FORMAT: \"yaml\" (accepted: one of text, json)",
        );
        self.assert_rejects(
            "SECURITY_PROTOCOL",
            "SASL_PLAINTEXT",
            "SASL_USERNAME is required when SECURITY_PROTOCOL=SASL_PLAINTEXT",
        );

        let missing = self.run(&["--check-config"], &[("ENV_FILE", "/nonexistent/x.env")]);
        assert_eq!(missing.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.env"));

        let other = tempfile::NamedTempFile::new().expect("temp env file");
        std::fs::write(other.path(), "# test\nRUST_LOG=debug\n").expect("write env file");
        let path = other.path().display().to_string();
        let overridden = self.run(&["--check-config"], &[("ENV_FILE", &path)]);
        let stdout = String::from_utf8_lossy(&overridden.stdout);
        assert!(stdout.contains("RUST_LOG=debug  # env file"), "{stdout}");
        assert!(Path::new(&path).exists());
    }
}
