//! A minimal Redis client (public for tests and tools): RESP2 commands over one TCP
//! connection, enough for the admin commands the Redis provider sends (`AUTH`, `ACL`, `SCAN`,
//! `DEL`) and the `PING` of a probe.

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest bulk string or array the client accepts in a reply.
const REPLY_LIMIT: usize = 64 * 1024 * 1024;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (a status or bulk string).
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Status(text) => Some(text.clone()),
            Reply::Bulk(Some(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        }
    }
}

pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub async fn connect(address: &str) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connect to Redis at {address}"))?;
        Ok(Connection::new(stream))
    }

    /// A client over a connection made elsewhere (a probe's, from a chosen source address).
    pub fn new(stream: TcpStream) -> Connection {
        Connection {
            stream: BufReader::new(stream),
        }
    }

    /// Sends `args` as one command and reads its reply; an error reply is an `Err`.
    pub async fn command(&mut self, args: &[&str]) -> anyhow::Result<Reply> {
        match self.raw(args).await? {
            Reply::Error(message) => {
                // The first word is enough to say what went wrong without echoing arguments
                // (which may be passwords) back into logs.
                anyhow::bail!("Redis refused {}: {message}", args.first().unwrap_or(&""))
            }
            reply => Ok(reply),
        }
    }

    /// Sends `args` and reads the reply, error replies included.
    pub async fn raw(&mut self, args: &[&str]) -> anyhow::Result<Reply> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&request)
            .await
            .context("send to Redis")?;
        self.read_reply().await
    }

    async fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let read = self
            .stream
            .read_line(&mut line)
            .await
            .context("read from Redis")?;
        if read == 0 {
            anyhow::bail!("Redis closed the connection");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_reply(&mut self) -> futures_util::future::BoxFuture<'_, anyhow::Result<Reply>> {
        Box::pin(async move {
            let line = self.read_line().await?;
            let (kind, rest) = line.split_at(line.len().min(1));
            match kind {
                "+" => Ok(Reply::Status(rest.to_owned())),
                "-" => Ok(Reply::Error(rest.to_owned())),
                ":" => Ok(Reply::Integer(rest.parse().context("parse Redis integer")?)),
                "$" => {
                    let length: i64 = rest.parse().context("parse Redis bulk length")?;
                    let Ok(length) = usize::try_from(length) else {
                        return Ok(Reply::Bulk(None));
                    };
                    anyhow::ensure!(length <= REPLY_LIMIT, "Redis reply too large");
                    let mut bytes = vec![0; length + 2];
                    self.stream
                        .read_exact(&mut bytes)
                        .await
                        .context("read from Redis")?;
                    bytes.truncate(length);
                    Ok(Reply::Bulk(Some(bytes)))
                }
                "*" => {
                    let count: i64 = rest.parse().context("parse Redis array length")?;
                    let Ok(count) = usize::try_from(count) else {
                        return Ok(Reply::Array(None));
                    };
                    anyhow::ensure!(count <= REPLY_LIMIT, "Redis reply too large");
                    let mut items = Vec::with_capacity(count.min(1024));
                    for _ in 0..count {
                        items.push(self.read_reply().await?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
                _ => anyhow::bail!("unexpected reply from Redis: {line:?}"),
            }
        })
    }
}
