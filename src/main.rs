//! The `eventflow` command line: parses arguments and calls into the library.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eventflow::engine::EngineConfig;
use eventflow::replay::{self, ReplayOptions};

/// EventFlow: exact real-time statistics for webinars and campaigns.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the final presence buckets of a JSON Lines event log.
    ///
    /// Output: one JSON object per final bucket, ordered by webinar_id, then
    /// bucket_start (DESIGN §6 "Replay output"). A summary of what was read
    /// goes to stderr; invalid lines are counted and described, never fatal
    /// unless --strict.
    Replay {
        /// The log to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Viewer liveness after a ping, in milliseconds.
        #[arg(long, default_value_t = EngineConfig::default().ttl_ms)]
        ttl_ms: i64,
        /// Bucket length, in milliseconds.
        #[arg(long, default_value_t = EngineConfig::default().bucket_ms)]
        bucket_ms: i64,
        /// How far behind its clock an event may be before it counts as late.
        #[arg(long, default_value_t = EngineConfig::default().late_ms)]
        late_ms: i64,
        /// Exit with status 1 if any line is invalid.
        #[arg(long)]
        strict: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("eventflow: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Replay {
            file,
            ttl_ms,
            bucket_ms,
            late_ms,
            strict,
        } => {
            let input: Box<dyn Read> = match file {
                None => Box::new(io::stdin().lock()),
                Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
                Some(p) => {
                    Box::new(File::open(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
                }
            };
            let opts = ReplayOptions {
                engine: EngineConfig {
                    ttl_ms,
                    bucket_ms,
                    late_ms,
                    ..EngineConfig::default()
                },
                ..ReplayOptions::default()
            };
            let summary = replay::replay(input, io::stdout().lock(), &opts)?;
            eprint!("{summary}");
            Ok(if strict && summary.invalid > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
