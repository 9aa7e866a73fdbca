//! IP-set messages cut to gRPC's size, as Felix's policy-sync server cuts them.

use alp_proto::felix::{IpSetDeltaUpdate, IpSetUpdate, ToDataplane, to_dataplane::Payload};

/// Most IP-set members in one message (Felix's `MaxMembersPerMessage`): 51 bytes per member at
/// worst (an IPv6 address with protocol and port) keeps a message under gRPC's default 4 MiB.
pub const MAX_MEMBERS_PER_MESSAGE: usize = 82_200;

/// `members` in chunks of at most [`MAX_MEMBERS_PER_MESSAGE`]; at least one chunk, possibly empty.
fn chunks(members: Vec<String>) -> Vec<Vec<String>> {
    if members.len() <= MAX_MEMBERS_PER_MESSAGE {
        return vec![members];
    }
    let mut out = Vec::with_capacity(members.len().div_ceil(MAX_MEMBERS_PER_MESSAGE));
    let mut rest = members.into_iter();
    loop {
        let chunk: Vec<String> = rest.by_ref().take(MAX_MEMBERS_PER_MESSAGE).collect();
        if chunk.is_empty() {
            return out;
        }
        out.push(chunk);
    }
}

/// A full IP-set update as Felix sends it: one `IPSetUpdate` with the first chunk of
/// members (possibly empty), then one `IPSetDeltaUpdate{added_members}` per further chunk.
pub fn split_ip_set_update(update: IpSetUpdate) -> Vec<ToDataplane> {
    let IpSetUpdate { id, members, r#type } = update;
    let mut chunks = chunks(members).into_iter();
    let first = chunks.next().unwrap_or_default();
    let mut out = Vec::with_capacity(1 + chunks.len());
    out.push(Payload::IpsetUpdate(IpSetUpdate { id: id.clone(), members: first, r#type }).into());
    out.extend(chunks.map(|added_members| {
        Payload::IpsetDeltaUpdate(IpSetDeltaUpdate { id: id.clone(), added_members, removed_members: Vec::new() })
            .into()
    }));
    out
}

/// A delta as Felix sends it: one message per chunk of added members, each also
/// carrying the last remaining chunk of removed members when both fit in one message; then the
/// remaining removed chunks, last first. A delta that fits is sent as it is.
pub fn split_ip_set_delta(delta: IpSetDeltaUpdate) -> Vec<ToDataplane> {
    let IpSetDeltaUpdate { id, added_members, removed_members } = delta;
    let mut adds = chunks(added_members).into_iter();
    let mut removes = chunks(removed_members);
    let mut out = Vec::new();
    loop {
        let added = adds.next();
        if added.is_none() && removes.is_empty() {
            return out;
        }
        let added_members = added.unwrap_or_default();
        let fits = removes.last().is_some_and(|r| added_members.len() + r.len() <= MAX_MEMBERS_PER_MESSAGE);
        let removed_members = if fits { removes.pop().unwrap_or_default() } else { Vec::new() };
        out.push(Payload::IpsetDeltaUpdate(IpSetDeltaUpdate { id: id.clone(), added_members, removed_members }).into());
    }
}

#[cfg(test)]
mod tests {
    use alp_test_support::{describe, members, strs};

    use super::*;

    fn names(msgs: &[ToDataplane]) -> Vec<String> {
        msgs.iter().map(describe).collect()
    }

    #[test]
    fn full_updates_split_at_the_member_limit() {
        let update = |n: usize| IpSetUpdate { id: "s".into(), members: members(n), r#type: 2 };
        assert_eq!(names(&split_ip_set_update(update(0))), strs(&["set s (0)"]));
        assert_eq!(names(&split_ip_set_update(update(MAX_MEMBERS_PER_MESSAGE))), strs(&["set s (82200)"]));
        let msgs = split_ip_set_update(update(2 * MAX_MEMBERS_PER_MESSAGE + 5));
        assert_eq!(names(&msgs), strs(&["set s (82200)", "delta s +82200 -0", "delta s +5 -0"]));
        let mut all: Vec<String> = Vec::new();
        for m in msgs {
            match m.payload {
                Some(Payload::IpsetUpdate(u)) => {
                    assert_eq!(u.r#type, 2);
                    all.extend(u.members);
                }
                Some(Payload::IpsetDeltaUpdate(u)) => all.extend(u.added_members),
                _ => unreachable!(),
            }
        }
        assert_eq!(all, members(2 * MAX_MEMBERS_PER_MESSAGE + 5), "chunks in order, nothing lost");
    }

    #[test]
    fn deltas_split_with_remove_chunks_taken_from_the_end_when_they_fit() {
        let d = |adds: usize, removes: usize| IpSetDeltaUpdate {
            id: "s".into(),
            added_members: members(adds),
            removed_members: members(removes).into_iter().map(|m| format!("r{m}")).collect(),
        };
        assert_eq!(names(&split_ip_set_delta(d(0, 0))), strs(&["delta s +0 -0"]));
        assert_eq!(names(&split_ip_set_delta(d(10, 20))), strs(&["delta s +10 -20"]));
        // 100,000 each: the second add chunk (17,800) has room for the last remove chunk.
        assert_eq!(
            names(&split_ip_set_delta(d(100_000, 100_000))),
            strs(&["delta s +82200 -0", "delta s +17800 -17800", "delta s +0 -82200"])
        );
        // Removes only: the chunks go last first.
        let msgs = split_ip_set_delta(d(0, 200_000));
        assert_eq!(names(&msgs), strs(&["delta s +0 -35600", "delta s +0 -82200", "delta s +0 -82200"]));
        let mut removed: Vec<String> = Vec::new();
        for m in msgs.into_iter().rev() {
            if let Some(Payload::IpsetDeltaUpdate(u)) = m.payload {
                removed.extend(u.removed_members);
            }
        }
        assert_eq!(removed.len(), 200_000);
        assert_eq!(removed, d(0, 200_000).removed_members);
    }
}
