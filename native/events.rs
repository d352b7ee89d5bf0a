//! Log events: the crate logs through the `log` facade (`log::info!(key = value; "event")`), and
//! one logger, installed once, hands each event of this crate to the two places that want it:
//! stderr, when `SEMANTIC_SEARCH_LOG` asks for its level (one line per event, silent by
//! default), and the `logger` of the model whose work it is (set for the thread while a model
//! loads or runs a call; the TypeScript layer's `logger` option). Nothing else prints.
use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

use log::kv::{Key, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};
use once_cell::sync::Lazy;

pub const ENV_LOG: &str = "SEMANTIC_SEARCH_LOG";

/// One event: its level, its name, and its fields in the order they were given.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub level: Level,
    pub name: String,
    pub fields: Vec<(String, FieldValue)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// Where a model's events go besides stderr.
pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

/// Runs `f` with its events also handed to `sink` (the thread's previous sink comes back after).
pub fn scoped<T>(sink: Option<&Sink>, f: impl FnOnce() -> T) -> T {
    install();
    let Some(sink) = sink else { return f() };
    let previous = SINK.with(|s| s.replace(Some(sink.clone())));
    struct Restore(Option<Sink>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SINK.with(|s| drop(s.replace(self.0.take())));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The sink of the model this thread works for, to hand to threads it starts.
pub fn current() -> Option<Sink> {
    SINK.with(|s| s.borrow().clone())
}

/// The level `SEMANTIC_SEARCH_LOG` names: `None` for unset, empty or `off`.
pub fn parse_level(value: &str) -> std::result::Result<Option<Level>, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "off" | "none" => Ok(None),
        "error" => Ok(Some(Level::Error)),
        "warn" => Ok(Some(Level::Warn)),
        "info" => Ok(Some(Level::Info)),
        "debug" => Ok(Some(Level::Debug)),
        _ => Err(format!(
            "is '{value}': use one of error, warn, info, debug (or off)"
        )),
    }
}

/// The stderr level, read once per process (a bad value is refused by every load instead).
static STDERR_LEVEL: Lazy<Option<Level>> = Lazy::new(|| {
    std::env::var(ENV_LOG)
        .ok()
        .and_then(|v| parse_level(&v).ok().flatten())
});

struct Bridge;

static BRIDGE: Bridge = Bridge;

/// Installs the bridge as the process's `log` logger, once; a program that embeds this crate
/// and installed its own keeps it (and gets the events there).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&BRIDGE).is_ok() {
            log::set_max_level(LevelFilter::Debug);
        }
    });
}

fn ours(target: &str) -> bool {
    target.starts_with("semantic_search_native")
}

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata) -> bool {
        ours(metadata.target())
            && (STDERR_LEVEL.is_some_and(|l| metadata.level() <= l)
                || SINK.with(|s| s.borrow().is_some()))
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let event = event_of(record);
        if STDERR_LEVEL.is_some_and(|l| event.level <= l) {
            // one write per line, so lines of threads logging at once do not interleave
            let _ = std::io::stderr().write_all(line(&event).as_bytes());
        }
        let sink = SINK.with(|s| s.borrow().clone());
        if let Some(sink) = sink {
            sink(event);
        }
    }

    fn flush(&self) {}
}

fn event_of(record: &Record) -> Event {
    struct Fields(Vec<(String, FieldValue)>);
    impl<'kvs> VisitSource<'kvs> for Fields {
        fn visit_pair(
            &mut self,
            key: Key<'kvs>,
            value: Value<'kvs>,
        ) -> std::result::Result<(), log::kv::Error> {
            self.0.push((key.as_str().to_string(), field(&value)));
            Ok(())
        }
    }
    let mut fields = Fields(Vec::new());
    let _ = record.key_values().visit(&mut fields);
    Event {
        level: record.level(),
        name: record.args().to_string(),
        fields: fields.0,
    }
}

fn field(value: &Value) -> FieldValue {
    if let Some(b) = value.to_bool() {
        return FieldValue::Bool(b);
    }
    if let Some(n) = value.to_u64() {
        return FieldValue::Number(n as f64);
    }
    if let Some(n) = value.to_i64() {
        return FieldValue::Number(n as f64);
    }
    if let Some(n) = value.to_f64() {
        return FieldValue::Number(n);
    }
    match value.to_borrowed_str() {
        Some(s) => FieldValue::Text(s.to_string()),
        None => FieldValue::Text(value.to_string()),
    }
}

/// `semantic-search-native <level> <event> key=value …`; a text with spaces, quotes or `=` is
/// quoted as JSON quotes it.
pub fn line(event: &Event) -> String {
    let mut line = format!(
        "semantic-search-native {} {}",
        level_name(event.level),
        event.name
    );
    for (key, value) in &event.fields {
        let value = match value {
            FieldValue::Number(n) => n.to_string(),
            FieldValue::Bool(b) => b.to_string(),
            FieldValue::Text(s) if needs_quotes(s) => {
                serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
            }
            FieldValue::Text(s) => s.clone(),
        };
        line.push_str(&format!(" {key}={value}"));
    }
    line.push('\n');
    line
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=')
}

pub fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug | Level::Trace => "debug",
    }
}
