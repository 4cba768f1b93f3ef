//! A Janus gateway under test (Debian's `janus` package): a configuration written for the run
//! (videoroom plugin and WebSocket transport only, ICE only on the namespace's loopback-addressed
//! dummy interface, see [`crate::netns`]), pinned to one core with `taskset`, killed when stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::{Child, Command};

use crate::proc_stats::{self, ProcSample};

const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

pub struct JanusProcess {
    child: Child,
    pid: u32,
    pub addr: SocketAddr,
    dir: PathBuf,
}

/// Whether the `janus` binary is installed.
pub fn installed() -> bool {
    Path::new("/usr/bin/janus").exists() && Path::new(LIB).join("plugins").exists()
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn write_config(dir: &Path, ws_port: u16, debug_level: u8) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let janus = format!(
        r#"general: {{
	configs_folder = "{dir}"
	plugins_folder = "{LIB}/plugins"
	transports_folder = "{LIB}/transports"
	events_folder = "{LIB}/events"
	loggers_folder = "{LIB}/loggers"
	debug_level = {debug_level}
	session_timeout = 120
}}
certificates: {{}}
media: {{
	rtp_port_range = "30000-60000"
	no_media_timer = 0
}}
nat: {{
	ice_enforce_list = "{iface}"
	nice_debug = false
}}
plugins: {{
	disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}}
transports: {{
	disable = "libjanus_http.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}}
loggers: {{
	disable = "libjanus_jsonlog.so"
}}
events: {{
	broadcast = false
	disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so"
}}
"#,
        dir = dir.display(),
        iface = crate::netns::IFACE,
    );
    std::fs::write(dir.join("janus.jcfg"), janus)?;
    let ws = format!(
        "general: {{\n\tjson = \"plain\"\n\tws = true\n\tws_port = {ws_port}\n\tws_ip = \"127.0.0.1\"\n\twss = false\n}}\nadmin: {{\n\tadmin_ws = false\n}}\n"
    );
    std::fs::write(dir.join("janus.transport.websockets.jcfg"), ws)?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    Ok(())
}

impl JanusProcess {
    pub async fn start(core: Option<usize>) -> Result<Self> {
        if !installed() {
            bail!("janus is not installed (apt-get install -y janus)");
        }
        if !crate::netns::inside() {
            bail!("Janus runs only inside the benchmark's network namespace (see netns.rs)");
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!(
            "roomcast-bench-janus-{}-{port}",
            std::process::id()
        ));
        // ROOMCAST_BENCH_JANUS_LOG=FILE keeps Janus's log (at debug level 4) for diagnosis.
        let log = std::env::var_os("ROOMCAST_BENCH_JANUS_LOG").map(PathBuf::from);
        write_config(&dir, port, if log.is_some() { 4 } else { 2 })?;
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg("/usr/bin/janus");
                c
            }
            None => Command::new("/usr/bin/janus"),
        };
        cmd.arg("-F")
            .arg(&dir)
            .arg("-o")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        match &log {
            Some(path) => {
                cmd.stdout(std::fs::File::create(path).context("creating the Janus log")?)
            }
            None => cmd.stdout(Stdio::null()),
        };
        let child = cmd.spawn().context("starting janus")?;
        let pid = child.id().ok_or_else(|| anyhow!("janus exited at once"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Janus is ready when its WebSocket port accepts connections.
        let ready = async {
            loop {
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .map_err(|_| anyhow!("janus did not open its WebSocket port within 20 s"))?;
        Ok(Self {
            child,
            pid,
            addr,
            dir,
        })
    }

    pub fn sample(&self) -> Result<ProcSample> {
        proc_stats::sample(self.pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
