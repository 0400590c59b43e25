//! What the status topic says, gathered per running service instance: the latest of each
//! part (settings, figures, members, commands), the live knobs each service accepts, and the
//! rebalances its group members went through.
//!
//! Pure bookkeeping with the clock passed in, so it is tested exactly; it must not read Kafka.
//! An instance counts as running while its last record is younger than
//! [`STALE_AFTER`](shared::control::status::STALE_AFTER) and it has not said it stopped; the
//! knobs of a service are kept from its latest settings record even after it stops, so a
//! value can still be checked while the service restarts.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::control::status::STALE_AFTER;
use shared::control::{LiveRule, StatusPart, StatusRecord, StuckPartition};

/// Rebalances kept for the timeline.
const REBALANCES_KEPT: usize = 100;
/// Instances silent for this long are forgotten (every restart is a new instance).
const FORGET_AFTER_MS: i64 = 3_600_000;

#[derive(Debug, Default)]
struct Instance {
    last_seen_ms: i64,
    stopped: bool,
    parts: BTreeMap<StatusPart, Map<String, Value>>,
}

/// What a service accepts live.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    pub knobs: BTreeMap<String, LiveRule>,
    pub commands: Vec<String>,
}

/// One rebalance of one member, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebalanceEntry {
    pub at: i64,
    pub member_id: String,
    pub cause: String,
    pub revoked: Vec<i64>,
    pub assigned: Vec<i64>,
    pub paused_ms: u64,
}

/// A group member as a running inventory instance reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberEntry {
    pub member_id: String,
    pub instance: String,
    pub generation: i64,
    pub state: String,
    pub partitions: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct StatusBook {
    instances: BTreeMap<(String, String), Instance>,
    catalogues: BTreeMap<String, Catalogue>,
    rebalances: VecDeque<RebalanceEntry>,
}

fn numbers(value: Option<&Value>) -> Vec<i64> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

impl StatusBook {
    pub fn apply(&mut self, record: StatusRecord) {
        if record.part == StatusPart::Settings {
            let knobs = record
                .body
                .get("knobs")
                .and_then(|k| serde_json::from_value(k.clone()).ok())
                .unwrap_or_default();
            let commands = record
                .body
                .get("commands")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default();
            self.catalogues
                .insert(record.service.clone(), Catalogue { knobs, commands });
        }
        if record.part == StatusPart::Members {
            self.note_rebalances(&record.body);
        }
        let newest = record.at_ms;
        self.instances
            .retain(|_, instance| newest - instance.last_seen_ms < FORGET_AFTER_MS);
        let key = (record.service.clone(), record.instance.clone());
        let instance = self.instances.entry(key).or_default();
        instance.last_seen_ms = instance.last_seen_ms.max(record.at_ms);
        if record.part == StatusPart::Figures {
            instance.stopped = record.body.get("stopped").and_then(Value::as_bool) == Some(true);
        }
        instance.parts.insert(record.part, record.body);
    }

    fn note_rebalances(&mut self, body: &Map<String, Value>) {
        let members = body.get("members").and_then(Value::as_array);
        for member in members.into_iter().flatten() {
            let Some(last) = member.get("last_rebalance").filter(|r| r.is_object()) else {
                continue;
            };
            let entry = RebalanceEntry {
                at: last.get("at").and_then(Value::as_i64).unwrap_or(0),
                member_id: member
                    .get("member_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                cause: last
                    .get("cause")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                revoked: numbers(last.get("revoked")),
                assigned: numbers(last.get("assigned")),
                paused_ms: last.get("paused_ms").and_then(Value::as_u64).unwrap_or(0),
            };
            let known = self
                .rebalances
                .iter()
                .any(|r| r.at == entry.at && r.member_id == entry.member_id);
            if !known {
                self.rebalances.push_back(entry);
                if self.rebalances.len() > REBALANCES_KEPT {
                    self.rebalances.pop_front();
                }
            }
        }
    }

    pub fn catalogue(&self, service: &str) -> Option<&Catalogue> {
        self.catalogues.get(service)
    }

    pub fn services(&self) -> impl Iterator<Item = &String> {
        self.catalogues.keys()
    }

    /// Running instances of `service`, newest first.
    fn running(&self, service: &str, now_ms: i64) -> Vec<(&str, &Instance)> {
        let stale = STALE_AFTER.as_millis() as i64;
        let mut found: Vec<(&str, &Instance)> = self
            .instances
            .iter()
            .filter(|((s, _), i)| s == service && !i.stopped && now_ms - i.last_seen_ms <= stale)
            .map(|((_, instance), i)| (instance.as_str(), i))
            .collect();
        found.sort_by_key(|(_, i)| std::cmp::Reverse(i.last_seen_ms));
        found
    }

    pub fn instance_count(&self, service: &str, now_ms: i64) -> usize {
        self.running(service, now_ms).len()
    }

    /// A part of the newest running instance of `service`.
    pub fn newest_part(
        &self,
        service: &str,
        part: StatusPart,
        now_ms: i64,
    ) -> Option<&Map<String, Value>> {
        self.running(service, now_ms)
            .into_iter()
            .find_map(|(_, i)| i.parts.get(&part))
    }

    /// A figure summed over the running instances of `service`.
    pub fn figure_sum(&self, service: &str, name: &str, now_ms: i64) -> u64 {
        self.running(service, now_ms)
            .into_iter()
            .filter_map(|(_, i)| i.parts.get(&StatusPart::Figures)?.get(name)?.as_u64())
            .sum()
    }

    /// The effective value of a setting in the newest running instance of `service`.
    pub fn setting(&self, service: &str, name: &str, now_ms: i64) -> Option<String> {
        self.newest_part(service, StatusPart::Settings, now_ms)?
            .get("settings")?
            .get(name)?
            .get("value")?
            .as_str()
            .map(str::to_owned)
    }

    /// service → its newest running instance's effective settings.
    pub fn settings(&self, now_ms: i64) -> BTreeMap<String, Value> {
        self.catalogues
            .keys()
            .filter_map(|service| {
                let settings = self
                    .newest_part(service, StatusPart::Settings, now_ms)?
                    .get("settings")?
                    .clone();
                Some((service.clone(), settings))
            })
            .collect()
    }

    /// service → what its newest running instance refused, and whether it can read control.
    pub fn health(&self, now_ms: i64) -> BTreeMap<String, Value> {
        self.catalogues
            .keys()
            .filter_map(|service| {
                let settings = self.newest_part(service, StatusPart::Settings, now_ms)?;
                Some((
                    service.clone(),
                    serde_json::json!({
                        "instances": self.instance_count(service, now_ms),
                        "refused": settings.get("refused").cloned().unwrap_or(Value::Null),
                        "control_unreadable": settings.get("control_unreadable").cloned().unwrap_or(Value::Null),
                    }),
                ))
            })
            .collect()
    }

    /// Every member of every running instance of `service` that is in a group now.
    pub fn members(&self, service: &str, now_ms: i64) -> Vec<MemberEntry> {
        let mut members = Vec::new();
        for (instance, status) in self.running(service, now_ms) {
            let listed = status
                .parts
                .get(&StatusPart::Members)
                .and_then(|m| m.get("members"))
                .and_then(Value::as_array);
            for member in listed.into_iter().flatten() {
                let state = member
                    .get("state")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if state == "closed" {
                    continue;
                }
                members.push(MemberEntry {
                    member_id: member
                        .get("member_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    instance: instance.to_owned(),
                    generation: member
                        .get("generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(-1),
                    state: state.to_owned(),
                    partitions: numbers(member.get("partitions")),
                });
            }
        }
        members.sort_by(|a, b| a.partitions.first().cmp(&b.partitions.first()));
        members
    }

    /// Every partition the members of running instances of `service` report stuck on a
    /// batch that does not decode.
    pub fn stuck(&self, service: &str, now_ms: i64) -> Vec<StuckPartition> {
        let mut stuck = Vec::new();
        for (_, status) in self.running(service, now_ms) {
            let listed = status
                .parts
                .get(&StatusPart::Members)
                .and_then(|m| m.get("members"))
                .and_then(Value::as_array);
            for member in listed.into_iter().flatten() {
                if member.get("state").and_then(Value::as_str) == Some("closed") {
                    continue;
                }
                let reported = member.get("stuck").and_then(Value::as_array);
                stuck.extend(
                    reported
                        .into_iter()
                        .flatten()
                        .filter_map(|entry| StuckPartition::deserialize(entry).ok()),
                );
            }
        }
        stuck.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        stuck
    }

    pub fn rebalances(&self) -> impl Iterator<Item = &RebalanceEntry> {
        self.rebalances.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(service: &str, instance: &str, part: &str, at: i64, body: &str) -> StatusRecord {
        let value = format!("{{\"at\":{at},{}", &body[1..]);
        StatusRecord::decode(
            Some(format!("{service}/{instance}/{part}").as_bytes()),
            Some(value.as_bytes()),
        )
        .expect("a status record")
    }

    #[test]
    fn running_instances_are_summed_and_stale_or_stopped_ones_dropped() {
        let mut book = StatusBook::default();
        book.apply(record("p", "a", "figures", 1_000, r#"{"acked":10}"#));
        book.apply(record("p", "b", "figures", 1_000, r#"{"acked":5}"#));
        assert_eq!(book.figure_sum("p", "acked", 2_000), 15);
        book.apply(record(
            "p",
            "b",
            "figures",
            3_000,
            r#"{"acked":6,"stopped":true}"#,
        ));
        assert_eq!(book.figure_sum("p", "acked", 3_000), 10);
        assert_eq!(
            book.figure_sum("p", "acked", 1_000 + 36_000),
            0,
            "stale after 35 s"
        );
    }

    #[test]
    fn stuck_partitions_of_running_members_are_gathered_and_closed_ones_ignored() {
        let mut book = StatusBook::default();
        let stuck = r#"{"members":[{"member_id":"m1","state":"stable","partitions":[0,1],
            "stuck":[{"topic":"orders","partition":1,"offset":7,"error":"malformed: x"}]},
            {"member_id":"m0","state":"closed","partitions":[],
            "stuck":[{"topic":"orders","partition":5,"offset":1,"error":"gone"}]}]}"#;
        book.apply(record("inv", "a", "members", 1_000, stuck));
        book.apply(record(
            "inv",
            "b",
            "members",
            1_000,
            r#"{"members":[{"member_id":"m2","state":"stable","partitions":[2]}]}"#,
        ));
        let found = book.stuck("inv", 2_000);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].partition, found[0].offset), (1, 7));
        assert!(
            book.stuck("inv", 1_000 + 36_000).is_empty(),
            "stale after 35 s"
        );
    }

    #[test]
    fn members_and_their_rebalances_are_collected_once() {
        let mut book = StatusBook::default();
        let members = r#"{"members":[{"member_id":"m1","generation":3,"state":"stable","partitions":[0,1,2],
            "last_rebalance":{"at":500,"cause":"joined","revoked":[],"assigned":[0,1,2],"paused_ms":40}}]}"#;
        book.apply(record("inv", "a", "members", 1_000, members));
        book.apply(record("inv", "a", "members", 1_200, members));
        assert_eq!(book.members("inv", 2_000).len(), 1);
        assert_eq!(book.members("inv", 2_000)[0].partitions, vec![0, 1, 2]);
        assert_eq!(book.rebalances().count(), 1);
        assert_eq!(book.rebalances().next().map(|r| r.paused_ms), Some(40));
    }

    #[test]
    fn knobs_come_from_the_settings_record() {
        let mut book = StatusBook::default();
        book.apply(record(
            "p",
            "a",
            "settings",
            1_000,
            r#"{"settings":{"MODE":{"value":"steady","source":"live"}},"knobs":{"MODE":{"kind":"choice","words":["burst","steady"]}},"commands":["pause"]}"#,
        ));
        let catalogue = book.catalogue("p").expect("known");
        assert!(catalogue.knobs.contains_key("MODE"));
        assert_eq!(catalogue.commands, vec!["pause".to_owned()]);
        assert_eq!(book.setting("p", "MODE", 2_000).as_deref(), Some("steady"));
    }
}
