//! The `roomcast` binary: reads configuration, starts the SFU and the HTTP/HTTPS listeners, and
//! shuts down cleanly on Ctrl-C or SIGTERM.

mod cluster;
mod config;
mod limits;
mod logging;
mod token;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Parser;
use config::{Command, Config, Listen};
use roomcast_sfu::Sfu;
use tokio::sync::watch;

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::parse();
    if let Some(Command::Token(args)) = &config.command {
        match args.mint(config.token_secret.as_deref()) {
            Ok(token) => println!("{token}"),
            Err(why) => {
                eprintln!("roomcast token: {why}");
                std::process::exit(2);
            }
        }
        return Ok(());
    }
    logging::init(config.log_format, config.log_file.as_deref())?;
    let sfu_config = config.sfu();
    log_ice_servers(&sfu_config.ice_servers);
    let sfu = Sfu::new(sfu_config).context("starting the media plane")?;
    let admin = roomcast_signaling::AdminAccess::from_token(config.admin_token.clone());
    match admin {
        roomcast_signaling::AdminAccess::Token(_) => tracing::info!("admin API and dashboard require the admin token"),
        roomcast_signaling::AdminAccess::LoopbackOnly => tracing::warn!(
            "no --admin-token set: the admin API, /metrics and /admin answer only to loopback clients"
        ),
    }
    if let Some(secret) = config.token_secret.as_deref() {
        token::check_secret(secret).map_err(anyhow::Error::msg)?;
        if secret.len() < token::STRONG_SECRET_BYTES {
            tracing::warn!(
                bytes = secret.len(),
                "--token-secret is short: anyone holding one token can guess it offline; use at least {} random bytes",
                token::STRONG_SECRET_BYTES
            );
        }
    }
    let room_tokens = config.token_secret.as_deref().map(|secret| {
        tracing::info!("rooms require an access token (--token-secret)");
        roomcast_signaling::RoomTokens::new(secret.as_bytes())
    });
    if room_tokens.is_none() {
        tracing::warn!("no --token-secret set: rooms are open to anyone who can reach this server");
    }
    // Bound before joining a cluster: the node's URL names the port actually bound.
    let http = match config.http {
        Listen::On(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HTTP on {addr}"))?,
        ),
        Listen::Off => None,
    };
    let https = match config.https {
        Listen::On(addr) => Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding HTTPS on {addr}"))?,
        ),
        Listen::Off => None,
    };
    let membership = match &config.redis {
        Some(url) => {
            let bound = (
                http.as_ref().and_then(|l| l.local_addr().ok()),
                https.as_ref().and_then(|l| l.local_addr().ok()),
            );
            let node_url = config.node_url(bound);
            let max_message_bytes = config.limits.edge().max_message_bytes;
            Some(cluster::Membership::join(url, node_url, sfu.clone(), max_message_bytes).await?)
        }
        None => None,
    };
    let options = roomcast_signaling::EdgeOptions {
        admin,
        limits: config.limits.edge(),
        room_tokens,
        allowed_origins: config.allowed_origins.clone(),
        cluster: membership.as_ref().map(|m| m.member.clone()),
    };
    let app = roomcast_signaling::router(sfu.clone(), options);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();

    if let Some(listener) = http {
        announce("http", listener.local_addr()?);
        let stopped = wait_for_stop(stop_rx.clone());
        let app = app.clone();
        servers.spawn(async move { roomcast_signaling::serve_http(listener, app, stopped).await });
    }
    if let Some(listener) = https {
        let tls = roomcast_signaling::load_or_generate(
            config.cert.clone(),
            config.key.clone(),
            &config.cert_dir,
        )
        .context("preparing the TLS certificate")?;
        if tls.generated {
            tracing::info!(cert = %tls.cert.display(), "generated a self-signed development certificate");
        }
        announce("https", listener.local_addr()?);
        let stopped = wait_for_stop(stop_rx.clone());
        servers.spawn(async move {
            roomcast_signaling::serve_https(listener, &tls, app, stopped).await
        });
    }
    if servers.is_empty() {
        anyhow::bail!("both --http and --https are off: nothing to serve");
    }

    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down"),
        Some(result) = servers.join_next() => result??,
    }
    let mut membership = membership;
    if let Some(membership) = &mut membership {
        membership.drain().await;
    }
    // Participants hear why (in a cluster: join again, elsewhere) before the listeners close
    // their connections.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    sfu.shutdown(SHUTDOWN_GRACE).await;
    tracing::info!(rooms = sfu.rooms().len(), "rooms drained");
    if let Some(membership) = membership {
        // Relayed participants' `kicked` goes out through Redis after they left the room.
        membership.settle(deadline).await;
        membership.leave().await;
    }
    let _ = stop_tx.send(true);
    while let Some(result) = servers.join_next().await {
        result??;
    }
    Ok(())
}

/// How long shutdown waits for participants to be told and removed.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

fn log_ice_servers(servers: &roomcast_sfu::IceServers) {
    use roomcast_sfu::TurnAuth;
    let auth = match servers.turn_auth {
        TurnAuth::None => "none",
        TurnAuth::Static { .. } => "static",
        TurnAuth::Secret { .. } => "ephemeral (shared secret)",
    };
    if servers.turn.is_empty() {
        tracing::info!(stun = ?servers.stun, "no TURN relay configured: clients that cannot reach the media ports directly have no fallback");
    } else {
        tracing::info!(stun = ?servers.stun, turn = ?servers.turn, credentials = auth, "TURN relay configured");
    }
}

fn announce(scheme: &str, addr: SocketAddr) {
    let shown = if addr.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", addr.port())
    } else {
        format!("{scheme}://{addr}")
    };
    tracing::info!(%addr, "listening; open {shown}");
    println!("roomcast: open {shown}");
}

async fn wait_for_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
