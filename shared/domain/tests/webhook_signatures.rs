//! Our webhook signatures checked by an implementation that is not ours: the Standard Webhooks reference library
//! for Python (`standardwebhooks`, pinned in infra/requirements-moto.txt and installed into .local/venv by
//! `make setup`). Fifty messages with random ids, secrets, unicode and empty bodies, and rotated secrets must
//! verify; a tampered body, a wrong secret and a ten-minute-old timestamp must not.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{TimeZone, Utc};
use commerce_domain::webhook::{Envelope, EventType, MessageId, WebhookHeaders, WebhookSecret};
use rand::distributions::{Alphanumeric, DistString};
use rand::{Rng, RngCore};
use serde_json::{json, Value};

/// Reads the checks from stdin, runs each through the reference library, writes the verdicts to stdout. Only the
/// library's own verification error counts as a rejection; anything else ends the script and fails the test.
const VERIFIER: &str = r#"
import json, sys
import standardwebhooks
from standardwebhooks import Webhook, WebhookVerificationError

verdicts = []
for check in json.load(sys.stdin):
    try:
        parsed = Webhook(check["secret"]).verify(check["body"], check["headers"], json_parse=check["json"])
        if check["json"] and parsed != json.loads(check["body"]):
            raise AssertionError("the parsed body differs for " + check["label"])
        verdicts.append({"label": check["label"], "accepted": True, "error": None})
    except WebhookVerificationError as e:
        verdicts.append({"label": check["label"], "accepted": False, "error": str(e)})
json.dump({"version": standardwebhooks.__version__, "verdicts": verdicts}, sys.stdout)
"#;

const MESSAGES: usize = 50;

fn venv_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: this test needs the project's venv with the `standardwebhooks` package \
         (`make setup` installs infra/requirements-moto.txt into .local/venv)",
        python.display()
    );
    python
}

/// One verification for the reference library to run.
struct Check {
    label: String,
    secret: String,
    body: String,
    headers: WebhookHeaders,
    accept: bool,
}

impl Check {
    fn to_json(&self) -> Value {
        let headers: serde_json::Map<String, Value> =
            self.headers.pairs().iter().map(|(name, value)| (name.to_string(), json!(value))).collect();
        let parses = serde_json::from_str::<Value>(&self.body).is_ok();
        json!({"label": self.label, "secret": self.secret, "body": self.body, "headers": headers, "json": parses})
    }
}

fn random_secret(rng: &mut impl RngCore) -> WebhookSecret {
    let mut bytes = vec![0u8; rng.gen_range(24..=64)];
    rng.fill_bytes(&mut bytes);
    WebhookSecret::from_random_bytes(&bytes).unwrap()
}

fn random_event_id(rng: &mut impl Rng) -> String {
    let len = rng.gen_range(1..=40);
    let mut id = Alphanumeric.sample_string(rng, len);
    if rng.gen_bool(0.3) {
        id.push_str(["_x", "-y", "__", "-"][rng.gen_range(0..4)]);
    }
    id
}

/// Text a receiver's JSON and UTF-8 handling could get wrong: accents, combining marks, CJK, emoji, separators
/// JSON allows raw, quotes, backslashes and control characters.
fn random_text(rng: &mut impl Rng) -> String {
    const PIECES: &[&str] =
        &["é", "ß", "e\u{301}", "中文", "🙂", "👩‍💻", "\u{2028}", "\"", "\\", "\n", "\t", "\u{0}", "ä.ö", " ", "plain"];
    (0..rng.gen_range(0..12)).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect()
}

fn random_body(rng: &mut impl Rng, index: usize) -> String {
    match index % 10 {
        0 => String::new(),
        1 => serde_json::to_string_pretty(&json!({"pretty": random_text(rng), "n": rng.gen::<u32>()})).unwrap(),
        _ => {
            let event_type = EventType::ALL[rng.gen_range(0..EventType::ALL.len())];
            let timestamp = Utc.timestamp_opt(rng.gen_range(1_600_000_000..1_900_000_000), 0).unwrap();
            let data = json!({"id": random_event_id(rng), "note": random_text(rng), "amount": rng.gen::<i32>()});
            String::from_utf8(Envelope { event_type, timestamp, data }.to_body().unwrap()).unwrap()
        }
    }
}

fn tamper(body: &str) -> String {
    match body.char_indices().last() {
        None => "x".to_owned(),
        Some((at, last)) => format!("{}{}", &body[..at], if last == '}' { ']' } else { '}' }),
    }
}

/// The checks for one message: accepted with each secret it was signed with; refused when tampered with, under a
/// secret it was not signed with, and when signed ten minutes ago.
fn checks_for(index: usize, rng: &mut impl RngCore, now: i64) -> Vec<Check> {
    let secrets: Vec<WebhookSecret> = (0..if index % 5 == 4 { 2 } else { 1 }).map(|_| random_secret(rng)).collect();
    let id = MessageId::for_event(&random_event_id(rng)).unwrap();
    let body = random_body(rng, index);
    let headers = WebhookHeaders::sign(&secrets, &id, now, body.as_bytes()).unwrap();
    let stale = WebhookHeaders::sign(&secrets, &id, now - 600, body.as_bytes()).unwrap();
    let check = |label: &str, secret: &WebhookSecret, body: &str, headers: &WebhookHeaders, accept| Check {
        label: format!("message {index}: {label}"),
        secret: secret.reveal(),
        body: body.to_owned(),
        headers: headers.clone(),
        accept,
    };
    let mut checks: Vec<Check> =
        secrets.iter().enumerate().map(|(n, s)| check(&format!("secret {n}"), s, &body, &headers, true)).collect();
    checks.push(check("tampered body", &secrets[0], &tamper(&body), &headers, false));
    checks.push(check("wrong secret", &random_secret(rng), &body, &headers, false));
    checks.push(check("ten minutes old", &secrets[0], &body, &stale, false));
    checks
}

fn run_reference(checks: &[Check]) -> Value {
    let input = Value::Array(checks.iter().map(Check::to_json).collect());
    let mut child = Command::new(venv_python())
        .args(["-c", VERIFIER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the venv's python");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference verifier failed (is `standardwebhooks` installed in .local/venv? `make setup` installs it):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the verifier's verdicts as JSON")
}

#[test]
fn standardwebhooks_reference_library_verifies_our_signatures() {
    let mut rng = rand::thread_rng();
    let now = Utc::now().timestamp();
    let checks: Vec<Check> = (0..MESSAGES).flat_map(|i| checks_for(i, &mut rng, now)).collect();
    let report = run_reference(&checks);
    assert_eq!(report["version"], "1.3.0", "the pinned reference library");
    let verdicts = report["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), checks.len());
    for (check, verdict) in checks.iter().zip(verdicts) {
        assert_eq!(verdict["label"], check.label.as_str());
        assert_eq!(verdict["accepted"], check.accept, "{}: {}", check.label, verdict["error"]);
    }
    let accepted = checks.iter().filter(|c| c.accept).count();
    assert_eq!(accepted, MESSAGES + MESSAGES / 5, "every message, and rotated ones under both secrets");
    assert!(checks.iter().any(|c| c.body.is_empty() && c.accept), "an empty body is among them");
}
