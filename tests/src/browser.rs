//! A real headless Chromium driven over the DevTools protocol, for tests that use the
//! dashboard the way a person does (type a value, press a button).
//!
//! It speaks the protocol over `--remote-debugging-pipe` (JSON messages separated by NUL on
//! file descriptors 3 and 4) rather than a WebSocket, so no client crate is needed; a reader
//! thread turns the pipe into a channel so that every call has a time limit. Only mechanism:
//! which elements to touch is each test's business.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const CALL_LIMIT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: mpsc::Receiver<Value>,
    session: String,
    next_id: u64,
}

/// Debian's `chromium` (or `chromium-browser`), if installed.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

impl Browser {
    /// Opens `url` in a new headless Chromium and attaches to its page.
    pub fn open(url: &str) -> Self {
        let binary = chromium().expect("Debian's chromium is needed (scripts/test.sh installs it)");
        // The shell maps our pipes onto the descriptors Chromium expects: it reads commands
        // from 3 (our stdin) and writes answers to 4 (our stdout).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {binary} --headless --no-sandbox --disable-gpu --window-size=1400,1000 \
                 --remote-debugging-pipe about:blank 3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let to_browser = child.stdin.take().expect("a pipe to chromium");
        let from = child.stdout.take().expect("a pipe from chromium");
        let (messages, from_browser) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop();
                        if let Ok(value) = serde_json::from_slice(&message)
                            && messages.send(value).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            to_browser,
            from_browser,
            session: String::new(),
            next_id: 0,
        };
        let targets = browser.call(None, "Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .expect("chromium opened a page")
            .to_owned();
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("attached to the page")
            .to_owned();
        // Navigating after attaching: `Page.navigate` answers once the new document is
        // committed, so later evaluations run in it and not in a page being replaced.
        let session = browser.session.clone();
        browser.call(Some(&session), "Page.navigate", json!({"url": url}));
        browser
    }

    /// Evaluates JavaScript in the page and returns its value (promises are awaited).
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let answer = self.call(
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            answer["exceptionDetails"].is_null(),
            "the page threw: {}",
            answer["exceptionDetails"]
        );
        answer["result"]["value"].clone()
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a protocol message");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .and_then(|()| self.to_browser.flush())
            .expect("chromium takes commands");
        loop {
            let answer = self
                .from_browser
                .recv_timeout(CALL_LIMIT)
                .unwrap_or_else(|_| {
                    panic!("chromium did not answer {method} within {CALL_LIMIT:?}")
                });
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
