//! The emberchat binary: reads the configuration, takes or binds the listening socket, and
//! runs until SIGINT or SIGTERM, telling systemd (when it runs under it) how it is doing.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use emberchat::config::{self, Command};
use emberchat::{Lifecycle, fdlimit, systemd};

fn main() -> ExitCode {
    let command = config::parse(std::env::args_os().skip(1), |name| std::env::var_os(name));
    let config = match command {
        Ok(Command::Run(config)) => *config,
        Ok(Command::Help) => {
            print!("{}", config::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("emberchat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Backup { db, out }) => {
            return match emberchat::backup(&db, &out) {
                Ok(report) => {
                    eprintln!(
                        "emberchat backup: {} messages (last id {}), {} bytes, written to {}; \
                         integrity check ok",
                        report.messages,
                        report.last_id,
                        report.bytes,
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("emberchat backup: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Command::Export { db }) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            return match emberchat::export(&db, &mut out) {
                Ok(count) => {
                    eprintln!("emberchat export: {count} messages");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("emberchat export: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(error) => {
            eprintln!("emberchat: {error}\nTry `emberchat --help`.");
            return ExitCode::from(2);
        }
    };
    emberchat::logger::init(config.log_level);
    let files = fdlimit::needed(config.engine.max_sessions);
    match fdlimit::raise_to(files) {
        Ok(allowed) if allowed < files => log::warn!(
            "only {allowed} open files allowed (RLIMIT_NOFILE), but --max-clients {} needs \
             about {files}: clients beyond the limit will be refused at accept \
             (raise LimitNOFILE= in the unit, or `ulimit -n`)",
            config.engine.max_sessions
        ),
        Ok(_) => {}
        Err(error) => log::warn!("cannot read or raise the open-file limit: {error}"),
    }

    // SAFETY: called once, first thing, while the process is still single-threaded: no
    // runtime, logger thread or store thread exists yet.
    let activated = match unsafe { systemd::take_listener() } {
        Ok(listener) => listener,
        Err(error) => {
            log::error!("the socket passed by systemd is unusable: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            log::error!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match activated {
            Some(listener) => tokio::net::TcpListener::from_std(listener),
            None => tokio::net::TcpListener::bind(config.listen).await,
        };
        let listener = match listener {
            Ok(listener) => listener,
            Err(error) => {
                log::error!("cannot listen on {}: {error}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        if let Some(interval) = systemd::watchdog_interval() {
            // Pings from the event loop itself: if it hangs, the pings stop and systemd acts.
            tokio::task::spawn_local(async move {
                loop {
                    systemd::notify("WATCHDOG=1");
                    tokio::time::sleep(interval).await;
                }
            });
        }
        let lifecycle = |event| match event {
            Lifecycle::Ready => systemd::notify("READY=1\nSTATUS=serving"),
            Lifecycle::Stopping => systemd::notify("STOPPING=1\nSTATUS=stopping"),
        };
        let shutdown = shutdown_signal();
        match emberchat::run(listener, config, shutdown, lifecycle).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                log::error!("{error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Watches SIGINT and SIGTERM from now on (not from the first poll: a signal that arrives
/// between start-up and the first turn of the event loop must not kill the process) and
/// returns a future that completes on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind: SignalKind, name: &str| {
        signal(kind)
            .map_err(|error| log::warn!("cannot watch {name}: {error}"))
            .ok()
    };
    let terminate = watch(SignalKind::terminate(), "SIGTERM");
    let interrupt = watch(SignalKind::interrupt(), "SIGINT");
    async move {
        let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(terminate) => {}
            _ = wait(interrupt) => {}
        }
    }
}
