//! `local-stack mail`: the emails the running stack sent, read back from the emulator.
//!
//! Nothing leaves the machine: SES in the emulator keeps every message it accepts. The launcher lists them at
//! `GET /_local/ses/sent` (infra/moto_launcher.py); this module turns each into what a developer or a test
//! wants to see: the recipients, the subject and the decoded text and HTML bodies.

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use mail_parser::{MessageParser, PartType};
use serde::{Deserialize, Serialize};

use crate::state::StackInfo;

/// One message of the launcher's `GET /_local/ses/sent`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SentMessage {
    pub id: String,
    #[serde(default)]
    pub source: Option<String>,
    /// The recipients moto recorded: for a raw send, the request's and then those of the To, Cc and Bcc
    /// headers (`Name <address>` when the header has a name), so an address may appear twice.
    #[serde(default)]
    pub destinations: Vec<String>,
    /// The MIME text of a raw send.
    #[serde(default)]
    pub raw: Option<String>,
    /// Subject and body of a simple send (moto keeps only the HTML body when both were given).
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SentList {
    messages: Vec<SentMessage>,
}

/// What `mail` prints for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    pub id: String,
    /// The recipients' addresses, each once (compared case-insensitively), in the order moto recorded them.
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// The text/plain part, decoded.
    pub text: Option<String>,
    /// The text/html part, decoded.
    pub html: Option<String>,
}

impl Mail {
    /// True if `address` is one of the recipients (case-insensitive).
    pub fn is_to(&self, address: &str) -> bool {
        let address = address.trim();
        self.to.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

/// The messages SES of the emulator at `moto_url` accepted, oldest first.
pub async fn fetch(moto_url: &str) -> Result<Vec<SentMessage>> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{}/_local/ses/sent", moto_url.trim_end_matches('/'));
    let resp = http
        .get(&url)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("asking the emulator for its sent emails ({url})"))?;
    let status = resp.status();
    let body = resp.text().await.with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        bail!("{url}: HTTP {status}: {body}");
    }
    let list: SentList = serde_json::from_str(&body).with_context(|| format!("{url} did not answer a message list"))?;
    Ok(list.messages)
}

/// The recipients, subject and bodies of one sent message.
pub fn view(m: &SentMessage) -> Mail {
    let mut to = Vec::new();
    for d in &m.destinations {
        push_unique(&mut to, bare_address(d));
    }
    let Some(raw) = m.raw.as_deref() else {
        let body = m.body.clone();
        let is_html = body.as_deref().is_some_and(|b| b.trim_start().starts_with('<'));
        let (text, html) = if is_html { (None, body) } else { (body, None) };
        return Mail { id: m.id.clone(), to, subject: m.subject.clone(), text, html };
    };
    let Some(parsed) = MessageParser::default().parse(raw.as_bytes()) else {
        return Mail { id: m.id.clone(), to, subject: None, text: None, html: None };
    };
    if to.is_empty() {
        for list in [parsed.to(), parsed.cc(), parsed.bcc()].into_iter().flatten() {
            for a in list.iter().filter_map(|a| a.address()) {
                push_unique(&mut to, a.to_string());
            }
        }
    }
    // The body lists hold stand-ins (an HTML part for a missing text one and the other way round): keep only
    // parts of the asked type.
    let text = parsed.text_body.iter().filter_map(|id| parsed.part(*id)).find_map(|p| match &p.body {
        PartType::Text(t) => Some(t.to_string()),
        _ => None,
    });
    let html = parsed.html_body.iter().filter_map(|id| parsed.part(*id)).find_map(|p| match &p.body {
        PartType::Html(h) => Some(h.to_string()),
        _ => None,
    });
    Mail { id: m.id.clone(), to, subject: parsed.subject().map(str::to_string), text, html }
}

/// `Name <a@b>` -> `a@b`; a bare address unchanged.
fn bare_address(s: &str) -> String {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => s[open + 1..close].trim().to_string(),
        _ => s.trim().to_string(),
    }
}

fn push_unique(list: &mut Vec<String>, address: String) {
    if !address.is_empty() && !list.iter().any(|a| a.eq_ignore_ascii_case(&address)) {
        list.push(address);
    }
}

/// `local-stack mail`: one JSON line per message the running stack sent, newest last; with `to`, only the
/// messages to that address.
pub async fn run(to: Option<&str>, state_dir: &Path) -> Result<()> {
    let info = StackInfo::read_running(state_dir)?.with_context(|| {
        format!("no running stack in {}: start one with `make dev` (`local-stack up`)", state_dir.display())
    })?;
    let messages = fetch(&info.moto_url).await?;
    for m in &messages {
        let mail = view(m);
        if to.is_some_and(|a| !mail.is_to(a)) {
            continue;
        }
        println!("{}", serde_json::to_string(&mail)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = concat!(
        "From: Commerce Demo Shop <orders@shop.example.com>\r\n",
        "To: Ada Lovelace <Ada@Example.com>\r\n",
        "Subject: =?utf-8?q?Your_order_ord=5F1_is_confirmed_=E2=9C=94?=\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n",
        "\r\n",
        "--b1\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "Thanks for your order =E2=80=94 total 19,99 =E2=82=AC\r\n",
        "--b1\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "PHA+VGhhbmtzIGZvciB5b3VyIG9yZGVyPC9wPg==\r\n",
        "--b1--\r\n",
    );

    fn sent(raw: Option<&str>, destinations: &[&str]) -> SentMessage {
        SentMessage {
            id: "m-1".into(),
            source: Some("orders@shop.example.com".into()),
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
            raw: raw.map(str::to_string),
            subject: None,
            body: None,
        }
    }

    #[test]
    fn when_a_raw_multipart_message_is_read_should_decode_subject_text_and_html() {
        let mail = view(&sent(Some(RAW), &["ada@example.com", "Ada Lovelace <Ada@Example.com>"]));
        assert_eq!(mail.to, vec!["ada@example.com".to_string()], "one address, as the request gave it");
        assert_eq!(mail.subject.as_deref(), Some("Your order ord_1 is confirmed ✔"));
        assert_eq!(mail.text.as_deref().map(str::trim_end), Some("Thanks for your order — total 19,99 €"));
        assert_eq!(mail.html.as_deref(), Some("<p>Thanks for your order</p>"));
        assert!(mail.is_to("ADA@example.com") && !mail.is_to("bob@example.com"));
    }

    #[test]
    fn when_no_destinations_are_recorded_should_take_the_headers_recipients() {
        let mail = view(&sent(Some(RAW), &[]));
        assert_eq!(mail.to, vec!["Ada@Example.com".to_string()]);
    }

    #[test]
    fn when_a_message_is_text_only_should_have_no_html() {
        let raw = "From: a@shop.example.com\r\nTo: b@example.com\r\nSubject: Hi\r\n\r\nplain body\r\n";
        let mail = view(&sent(Some(raw), &["b@example.com"]));
        assert_eq!(mail.text.as_deref().map(str::trim_end), Some("plain body"));
        assert_eq!(mail.html, None, "no text/html part, none made up");
    }

    #[test]
    fn when_a_simple_message_is_read_should_tell_html_from_text() {
        let mut m = sent(None, &["b@example.com"]);
        m.subject = Some("Hi".into());
        m.body = Some("<p>hello</p>".into());
        let mail = view(&m);
        assert_eq!(
            (mail.subject.as_deref(), mail.html.as_deref(), mail.text),
            (Some("Hi"), Some("<p>hello</p>"), None)
        );
        m.body = Some("hello".into());
        assert_eq!(view(&m).text.as_deref(), Some("hello"));
    }

    #[test]
    fn when_the_endpoint_answers_should_parse_its_shape() {
        let body = r#"{"messages": [{"id": "x", "source": "a@shop.example.com", "destinations": ["b@example.com"],
            "raw": null, "subject": "S", "body": "B"}]}"#;
        let list: SentList = serde_json::from_str(body).expect("shape");
        assert_eq!(list.messages[0].subject.as_deref(), Some("S"));
        let line = serde_json::to_value(view(&list.messages[0])).expect("json");
        assert_eq!(
            line,
            serde_json::json!({"id": "x", "to": ["b@example.com"], "subject": "S", "text": "B", "html": null})
        );
    }
}
