//! The command line every service shares: `--help`, `--version`, `--check-config`, plus the
//! subcommands a service declares (the analytics `healthcheck`).
//!
//! Configuration itself comes from env files and the environment, never from flags, so this
//! stays a few lines of hand-written parsing rather than a dependency. Exit codes follow one
//! rule across services: 0 success, 1 runtime failure, 2 bad usage or bad configuration.

use std::io::Write;

use std::path::Path;

use crate::settings::{EnvFileStatus, LogFormat, SettingsError, SettingsSource, Variable};
use crate::telemetry;

/// Exit status for bad usage or bad configuration.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run,
    Help,
    Version,
    CheckConfig,
    /// A service-specific subcommand such as `healthcheck`.
    Subcommand(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown argument {0:?} (try --help)")]
pub struct UsageError(pub String);

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(
    args: I,
    subcommands: &[&str],
) -> Result<Command, UsageError> {
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        None => Command::Run,
        Some("-h" | "--help" | "help") => Command::Help,
        Some("-V" | "--version") => Command::Version,
        Some("--check-config") => Command::CheckConfig,
        Some(other) if subcommands.contains(&other) => Command::Subcommand(other.to_owned()),
        Some(other) => return Err(UsageError(other.to_owned())),
    };
    match args.next() {
        Some(extra) => Err(UsageError(extra)),
        None => Ok(command),
    }
}

/// Describes a service for `--help`.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub binary: &'static str,
    pub version: &'static str,
    pub about: &'static str,
    pub default_env_file: &'static str,
    pub subcommands: &'static [(&'static str, &'static str)],
}

pub fn print_help(info: &ServiceInfo, variables: &[Variable]) {
    let mut out = String::new();
    out.push_str(&format!(
        "{} {}\n{}\n\n",
        info.binary, info.version, info.about
    ));
    out.push_str(&format!("Usage: {} [OPTION]\n\nOptions:\n", info.binary));
    out.push_str("  -h, --help        print this help\n");
    out.push_str("  -V, --version     print the version\n");
    out.push_str(
        "      --check-config  print the effective configuration (secrets masked) and exit;\n",
    );
    out.push_str("                    exits 2 if the configuration is invalid\n");
    for (name, about) in info.subcommands {
        out.push_str(&format!("  {name:<16}  {about}\n"));
    }
    out.push_str(&format!(
        "\nSettings come from built-in defaults, then the env file ({}; ENV_FILE=path for\n\
         another), then the environment. Variables:\n",
        info.default_env_file
    ));
    for variable in variables {
        out.push_str(&format!(
            "  {:<24} {} [default: {:?}]\n",
            variable.name, variable.doc, variable.default
        ));
    }
    print_stdout(&out);
}

/// Prints the effective configuration with each value's origin, secrets masked.
pub fn print_effective(source: &SettingsSource) {
    let mut out = String::new();
    match source.env_file() {
        EnvFileStatus::Read(path) => out.push_str(&format!("# env file: {}\n", path.display())),
        EnvFileStatus::DefaultAbsent(path) => out.push_str(&format!(
            "# env file: {} (not found, skipped)\n",
            path.display()
        )),
    }
    for (name, value, origin) in source.effective() {
        out.push_str(&format!("{name}={value}  # {origin}\n"));
    }
    print_stdout(&out);
}

/// What a service's `main` should do after the shared start-up steps.
#[derive(Debug)]
pub enum Startup<S> {
    /// Run the service with these settings (telemetry is installed).
    Run(S),
    /// Run a declared subcommand with these settings.
    Subcommand(String, S),
    /// Exit now with this status (help, version, check-config, or an error already printed).
    Exit(i32),
}

/// The start-up every service shares: parse the command line, load and validate settings
/// (exit 2 with the variable, value and what is accepted on a bad one), answer `--help`,
/// `--version` and `--check-config`, and install logging.
pub fn start<S>(
    info: &ServiceInfo,
    variables: &[Variable],
    build: impl FnOnce(&SettingsSource) -> Result<S, SettingsError>,
) -> Startup<S> {
    let subcommands: Vec<&str> = info.subcommands.iter().map(|(name, _)| *name).collect();
    let command = match parse_args(std::env::args().skip(1), &subcommands) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("{}: {e}", info.binary);
            return Startup::Exit(EXIT_BAD_CONFIG);
        }
    };
    match command {
        Command::Help => {
            print_help(info, variables);
            return Startup::Exit(0);
        }
        Command::Version => {
            print_stdout(&format!("{} {}\n", info.binary, info.version));
            return Startup::Exit(0);
        }
        Command::Run | Command::CheckConfig | Command::Subcommand(_) => {}
    }
    let loaded = SettingsSource::from_process(variables, Path::new(info.default_env_file))
        .and_then(|source| {
            let log_format = LogFormat::from_source(&source)?;
            let settings = build(&source)?;
            Ok((source, log_format, settings))
        });
    let (source, log_format, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}: configuration error: {e}", info.binary);
            return Startup::Exit(EXIT_BAD_CONFIG);
        }
    };
    if command == Command::CheckConfig {
        print_effective(&source);
        return Startup::Exit(0);
    }
    if let Err(e) = telemetry::init(log_format, &source.raw("RUST_LOG")) {
        eprintln!("{}: configuration error: {e}", info.binary);
        return Startup::Exit(EXIT_BAD_CONFIG);
    }
    match command {
        Command::Subcommand(name) => Startup::Subcommand(name, settings),
        _ => Startup::Run(settings),
    }
}

/// Writes to stdout, ignoring a closed pipe (`--help | head` must not panic).
fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_arguments_means_run() {
        assert_eq!(parse_args(args(&[]), &[]), Ok(Command::Run));
    }

    #[test]
    fn flags_and_declared_subcommands_are_recognised() {
        assert_eq!(parse_args(args(&["--help"]), &[]), Ok(Command::Help));
        assert_eq!(parse_args(args(&["-V"]), &[]), Ok(Command::Version));
        assert_eq!(
            parse_args(args(&["--check-config"]), &[]),
            Ok(Command::CheckConfig)
        );
        assert_eq!(
            parse_args(args(&["healthcheck"]), &["healthcheck"]),
            Ok(Command::Subcommand("healthcheck".into()))
        );
    }

    #[test]
    fn unknown_or_extra_arguments_are_usage_errors() {
        assert_eq!(
            parse_args(args(&["--bogus"]), &[]),
            Err(UsageError("--bogus".into()))
        );
        assert_eq!(
            parse_args(args(&["healthcheck"]), &[]),
            Err(UsageError("healthcheck".into()))
        );
        assert_eq!(
            parse_args(args(&["--help", "x"]), &[]),
            Err(UsageError("x".into()))
        );
    }
}
