//! A child process's output, line by line: read to its end on a thread of its own (so that a
//! full pipe never stalls the child), and awaited by content with a deadline instead of polled.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The lines a child printed, as they come.
pub struct Lines {
    incoming: Receiver<String>,
    /// Every line read so far, in order.
    pub seen: Vec<String>,
}

impl Lines {
    /// Reads `output` (a child's piped stdout or stderr) to its end on a new thread.
    pub fn read(output: impl Read + Send + 'static) -> Self {
        let (line, incoming) = channel();
        std::thread::spawn(move || {
            for text in BufReader::new(output).lines().map_while(Result::ok) {
                // Once nobody listens, the rest is still drained.
                let _ = line.send(text);
            }
        });
        Self {
            incoming,
            seen: Vec::new(),
        }
    }

    /// The next line that contains `text`; fails when none comes within `within` or the child's
    /// output ends first, naming what it printed.
    pub fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(err) => panic!("no line with {text:?} ({err}); printed: {:?}", self.seen),
            }
        }
    }
}
