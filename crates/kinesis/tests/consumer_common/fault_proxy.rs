//! A fault-injecting HTTP/1.1 proxy in front of kinesis-local: answers chosen API calls with
//! an error instead of forwarding them, and records when each call arrived.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Answer the next call of `target` (e.g. `GetRecords`) with this error.
#[derive(Debug, Clone)]
pub struct Fault {
    pub target: &'static str,
    pub error_type: &'static str,
}

#[derive(Default)]
pub struct ProxyState {
    pub faults: VecDeque<Fault>,
    /// (target, arrival) of every call, faulted or not.
    pub calls: Vec<(String, Instant)>,
}

pub struct FaultProxy {
    pub url: String,
    pub state: Arc<Mutex<ProxyState>>,
    _tasks: JoinSet<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let mut tasks = JoinSet::new();
        let st = state.clone();
        tasks.spawn(async move {
            // Connections are few and short-lived in a test; each gets its own task.
            let mut conns = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                conns.spawn(serve(client, upstream.clone(), st.clone()));
                while conns.try_join_next().is_some() {}
            }
        });
        FaultProxy {
            url,
            state,
            _tasks: tasks,
        }
    }

    pub fn add_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    pub fn calls(&self, target: &str) -> Vec<Instant> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|(t, _)| t == target)
            .map(|(_, i)| *i)
            .collect()
    }
}

/// Reads one HTTP/1.1 message head and body (Content-Length or chunked); None at EOF.
async fn read_message<R: AsyncBufReadExt + Unpin>(r: &mut R) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap())
    {
        body.resize(len, 0);
        r.read_exact(&mut body).await.ok()?;
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size_line = String::new();
            r.read_line(&mut size_line).await.ok()?;
            body.extend_from_slice(size_line.as_bytes());
            let size =
                usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await.ok()?;
            body.extend_from_slice(&chunk);
            if size == 0 {
                break;
            }
        }
    }
    Some((head, body))
}

async fn serve(client: TcpStream, upstream: String, state: Arc<Mutex<ProxyState>>) {
    let (cr, mut cw) = client.into_split();
    let mut cr = BufReader::new(cr);
    let mut up: Option<(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    )> = None;
    while let Some((head, body)) = read_message(&mut cr).await {
        let target = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("x-amz-target")
                    .then(|| v.trim().rsplit('.').next().unwrap().to_owned())
            })
            .unwrap_or_default();
        let fault = {
            let mut st = state.lock().unwrap();
            st.calls.push((target.clone(), Instant::now()));
            let pos = st.faults.iter().position(|f| f.target == target);
            pos.and_then(|p| st.faults.remove(p))
        };
        if let Some(f) = fault {
            let msg = format!(
                r#"{{"__type":"{}","message":"injected by the test proxy"}}"#,
                f.error_type
            );
            let resp = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{msg}",
                msg.len()
            );
            if cw.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        if up.is_none() {
            let Ok(s) = TcpStream::connect(&upstream).await else {
                return;
            };
            let (r, w) = s.into_split();
            up = Some((BufReader::new(r), w));
        }
        let (ur, uw) = up.as_mut().unwrap();
        if uw.write_all(head.as_bytes()).await.is_err() || uw.write_all(&body).await.is_err() {
            return;
        }
        let Some((rhead, rbody)) = read_message(ur).await else {
            return;
        };
        if cw.write_all(rhead.as_bytes()).await.is_err() || cw.write_all(&rbody).await.is_err() {
            return;
        }
    }
}
