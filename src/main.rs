//! The `eventflow` command line: parses arguments and calls into the library.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use eventflow::app::Application;
use eventflow::auth::{Scope, Signer, parse_ttl};
use eventflow::config::Settings;
use eventflow::engine::EngineConfig;
use eventflow::replay::{self, ReplayOptions};
use eventflow::sink::store::Store;

/// EventFlow: exact real-time statistics for webinars and campaigns.
///
/// Without a command, runs the service (`serve`). Configuration comes from
/// config/default.toml (built in), then --config FILE, then environment
/// variables EVENTFLOW__<SECTION>__<KEY> (e.g. EVENTFLOW__HTTP__ADDR=0.0.0.0:8080).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// A TOML file overriding the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: HTTP ingest, the event log, the engine, the store,
    /// live WebSockets and the dashboard (the default).
    Serve,
    /// Run the service with a simulated audience on three webinars.
    Demo,
    /// Print the final presence buckets of a JSON Lines event log.
    ///
    /// Output: one JSON object per final bucket, ordered by webinar_id, then
    /// bucket_start (DESIGN §6 "Replay output"). A summary of what was read
    /// goes to stderr; invalid lines are counted and described, never fatal
    /// unless --strict. The engine's settings (window.bucket_ms,
    /// presence.ttl_ms, window.late_ms, stats.timezone) come from the same
    /// layers as the service's — built-in defaults, --config FILE, then
    /// EVENTFLOW__ variables — so a replay of the service's log reproduces
    /// its rows; the flags below override them.
    Replay(ReplayArgs),
    /// Load event logs into the configured stores, with their historical
    /// timestamps, exactly as a replay computes them.
    ///
    /// Reads our JSON Lines logs (plain or gzip) and the web app's page-view
    /// log (logs/pageviews/YYYY-MM-DD.jsonl) as one stream merged by ts
    /// (each file in its own order, ties in argument order), closes
    /// everything at the end, and writes the rows with idempotent upserts:
    /// restoring the same files twice changes nothing. A summary goes to
    /// stderr; invalid lines are counted and named, never fatal unless
    /// --strict.
    Restore(RestoreArgs),
    /// Apply the store's migrations and exit.
    Migrate,
    /// Mint a read token signed with auth.secret.
    Token(TokenArgs),
    /// Exit 0 if the service at http.addr answers GET /healthz with 200,
    /// else 1: a container health check that needs no other tool.
    Healthcheck,
}

#[derive(Args)]
struct ReplayArgs {
    /// The log to read; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// Viewer liveness after a ping, in milliseconds (presence.ttl_ms).
    #[arg(long)]
    ttl_ms: Option<i64>,
    /// Bucket length, in milliseconds (window.bucket_ms).
    #[arg(long)]
    bucket_ms: Option<i64>,
    /// How far behind its clock an event may be before it counts as late
    /// (window.late_ms).
    #[arg(long)]
    late_ms: Option<i64>,
    /// Exit with status 1 if any line is invalid.
    #[arg(long)]
    strict: bool,
}

#[derive(Args)]
struct RestoreArgs {
    /// The logs to load.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Exit with status 1 if any line is invalid.
    #[arg(long)]
    strict: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct TokenScope {
    /// A token reading one client's data (with --ingest: a key sending its
    /// page views).
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
    /// A token reading one webinar's data (with --ingest: a key sending its
    /// presence).
    #[arg(long, value_name = "WEBINAR_ID")]
    webinar: Option<String>,
    /// With --ingest: a key sending one campaign's visits and conversions.
    #[arg(long, value_name = "CAMPAIGN_ID", requires = "ingest")]
    campaign: Option<String>,
    /// A token reading everything and posting batches.
    #[arg(long, conflicts_with = "ingest")]
    admin: bool,
}

#[derive(Args)]
struct TokenArgs {
    #[command(flatten)]
    scope: TokenScope,
    /// Mint an ingest key for browsers (auth.ingest = "signed"), sent in the
    /// X-EventFlow-Key header or as ?key=; it reads nothing.
    #[arg(long)]
    ingest: bool,
    /// How long the token is valid: 90s, 30m, 1h, 7d (at most 30d).
    #[arg(long, default_value = "1h")]
    ttl: String,
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
    match cli.command.unwrap_or(Command::Serve) {
        Command::Replay(args) => replay_command(Settings::load(cli.config.as_deref())?, args),
        Command::Token(args) => {
            let settings = Settings::load(cli.config.as_deref())?;
            let secret = settings
                .auth
                .secret
                .context("auth.secret is not set: tokens signed now would not verify against a running service")?;
            let ttl = parse_ttl(&args.ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            let s = args.scope;
            let scope = match (args.ingest, s.client, s.webinar, s.campaign) {
                (false, Some(c), _, _) => Scope::Client(c),
                (false, _, Some(w), _) => Scope::Webinar(w),
                (true, Some(c), _, _) => Scope::IngestClient(c),
                (true, _, Some(w), _) => Scope::IngestWebinar(w),
                (true, _, _, Some(c)) => Scope::IngestCampaign(c),
                (true, None, None, None) => {
                    anyhow::bail!("--ingest: name a --webinar, --campaign or --client")
                }
                _ => Scope::Admin,
            };
            let now = jiff::Timestamp::now().as_millisecond();
            println!("{}", Signer::new(secret.as_bytes()).mint(scope, now + ttl));
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck => {
            let settings = Settings::load(cli.config.as_deref())?;
            Ok(match healthcheck(&settings.http.addr) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("eventflow healthcheck: {e:#}");
                    ExitCode::from(1)
                }
            })
        }
        Command::Restore(args) => {
            let settings = Settings::load(cli.config.as_deref())?;
            runtime()?.block_on(restore_command(settings, args))
        }
        Command::Migrate => {
            let settings = Settings::load(cli.config.as_deref())?;
            runtime()?.block_on(async {
                let store = match &settings.postgres.url {
                    Some(url) => Store::connect(url).await?,
                    None => Store::embedded(&settings.data.dir).await?,
                };
                store.migrate().await?;
                eprintln!("migrations applied");
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        command @ (Command::Serve | Command::Demo) => {
            init_tracing();
            let settings = Settings::load(cli.config.as_deref())?;
            let demo = matches!(command, Command::Demo);
            let rt = runtime()?;
            let result = rt.block_on(async move {
                let app = Application::build(settings).await?;
                app.announce();
                if demo {
                    tokio::spawn(eventflow::demo::audience(app.state().clone()));
                    tracing::info!("demo: a simulated audience is joining w-keynote, w-workshop and w-office-hours");
                }
                app.run_until_stopped(shutdown_signal()).await?;
                anyhow::Ok(ExitCode::SUCCESS)
            });
            // Nothing left may hold the process past the shutdown deadline.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }
    }
}

/// `GET /healthz` on `addr` (a wildcard address means this machine), with
/// a 3 s bound on every step.
fn healthcheck(addr: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(3);
    let unwild = |a: std::net::SocketAddr| match a.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        _ => a,
    };
    // A name may resolve to several addresses (localhost: ::1 and
    // 127.0.0.1): the first that takes the connection is asked.
    let mut last = None;
    let mut connected = None;
    for target in addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .map(unwild)
    {
        match std::net::TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => {
                connected = Some((target, stream));
                break;
            }
            Err(e) => last = Some(anyhow::anyhow!("connecting to {target}: {e}")),
        }
    }
    let Some((target, mut stream)) = connected else {
        return Err(last.unwrap_or_else(|| anyhow::anyhow!("{addr} resolves to no address")));
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .with_context(|| format!("reading the answer of {target}"))?;
    match &head[..] {
        b"HTTP/1.1 200" => Ok(()),
        other => anyhow::bail!(
            "{target} answered {:?}",
            String::from_utf8_lossy(other).trim()
        ),
    }
}

fn replay_command(settings: Settings, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = match args.file {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => Box::new(File::open(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?),
    };
    let configured = settings.engine();
    let engine = EngineConfig {
        ttl_ms: args.ttl_ms.unwrap_or(configured.ttl_ms),
        bucket_ms: args.bucket_ms.unwrap_or(configured.bucket_ms),
        late_ms: args.late_ms.unwrap_or(configured.late_ms),
        ..configured
    };
    engine.validate()?;
    let opts = ReplayOptions {
        engine,
        ..ReplayOptions::default()
    };
    let summary = replay::replay(input, io::stdout().lock(), &opts)?;
    eprint!("{summary}");
    Ok(if args.strict && summary.invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn restore_command(settings: Settings, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    // The embedded store is the data directory's: not while a service runs.
    let _dir_lock = match settings.postgres.url {
        Some(_) => None,
        None => {
            std::fs::create_dir_all(&settings.data.dir)?;
            Some(eventflow::datadir::lock(&settings.data.dir)?)
        }
    };
    let store = match &settings.postgres.url {
        Some(url) => Store::connect(url)
            .await
            .context("connecting to Postgres")?,
        None => Store::embedded(&settings.data.dir)
            .await
            .context("opening the embedded store")?,
    };
    store.migrate().await.context("applying migrations")?;
    let bar = indicatif::ProgressBar::new(eventflow::restore::total_bytes(&args.files));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "restore {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("a valid template"),
    );
    let summary = eventflow::restore::restore(&store, settings.engine(), &args.files, |bytes| {
        bar.set_position(bytes)
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    eprint!("{summary}");
    Ok(if args.strict && summary.invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
