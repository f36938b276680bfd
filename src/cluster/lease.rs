//! Leases in the JetStream key-value bucket (DESIGN §8): which instance owns
//! which partition, and who is a member.
//!
//! Keys: `p<n>` holds the owner's instance id, `members.<id>` says an
//! instance is alive. The bucket's `max_age` is the lease TTL, so an entry
//! nobody renews disappears by itself; a claim is a `create` (it succeeds
//! only where no entry is), a renewal an `update` expecting the revision
//! the owner last wrote (compare-and-set, so nobody else's lease is ever
//! renewed). The revision of the claim is the owner's fencing token: later
//! claims have higher revisions (they are later messages of the bucket's
//! stream). Works on NATS 2.9 (nothing newer is needed).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;

/// The key of partition `n`'s lease.
pub fn lease_key(n: u32) -> String {
    format!("p{n}")
}

const MEMBER_PREFIX: &str = "members.";

/// The bucket's name for a stream: `<stream>_leases`.
pub fn bucket_name(stream: &str) -> String {
    format!("{stream}_leases")
}

/// Opens (or creates) the lease bucket.
pub async fn bucket(
    js: &jetstream::Context,
    stream: &str,
    ttl: Duration,
    replicas: u32,
) -> anyhow::Result<kv::Store> {
    let name = bucket_name(stream);
    match js.get_key_value(&name).await {
        Ok(store) => return Ok(store),
        Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {}
        Err(e) => return Err(e).with_context(|| format!("opening the lease bucket {name}")),
    }
    // The bucket's stream as the client library makes it, made here: its
    // `create_key_value` first asks for the account's limits, whose answer
    // from NATS 2.9 it cannot read.
    js.get_or_create_stream(jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some("EventFlow partition leases".into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_bytes: -1,
        max_message_size: -1,
        max_age: ttl,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas as usize,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating the lease bucket {name}"))?;
    js.get_key_value(&name)
        .await
        .with_context(|| format!("opening the lease bucket {name}"))
}

/// Says `instance` is alive for another TTL.
pub async fn heartbeat(kv: &kv::Store, instance: &str) -> anyhow::Result<()> {
    kv.put(format!("{MEMBER_PREFIX}{instance}"), bytes::Bytes::new())
        .await
        .context("renewing membership")?;
    Ok(())
}

/// The instances alive now, and which partitions' leases are held.
pub async fn survey(kv: &kv::Store, partitions: u32) -> anyhow::Result<Survey> {
    let mut survey = Survey {
        members: BTreeSet::new(),
        held: vec![false; partitions as usize],
    };
    let mut keys = kv.keys().await.context("reading the lease bucket")?;
    while let Some(key) = tokio::time::timeout(Duration::from_secs(5), keys.next())
        .await
        .context("reading the lease bucket timed out")?
    {
        let key = key.context("reading the lease bucket")?;
        if let Some(id) = key.strip_prefix(MEMBER_PREFIX) {
            survey.members.insert(id.to_owned());
        } else if let Some(n) = key.strip_prefix('p').and_then(|n| n.parse::<u32>().ok())
            && n < partitions
        {
            survey.held[n as usize] = true;
        }
    }
    Ok(survey)
}

/// What the bucket says now.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub members: BTreeSet<String>,
    /// Whether partition n's lease is held (by anyone).
    pub held: Vec<bool>,
}

/// Claims partition `n`: `Some(revision)` when it was free.
pub async fn claim(kv: &kv::Store, n: u32, instance: &str) -> anyhow::Result<Option<u64>> {
    match kv
        .create(lease_key(n), bytes::Bytes::from(instance.to_owned()))
        .await
    {
        Ok(revision) => Ok(Some(revision)),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e).context("claiming a partition"),
    }
}

/// Renews a held lease; `Err` when it is no longer ours (or NATS did not
/// answer: either way the owner stops).
pub async fn renew(kv: &kv::Store, n: u32, instance: &str, revision: u64) -> anyhow::Result<u64> {
    kv.update(
        lease_key(n),
        bytes::Bytes::from(instance.to_owned()),
        revision,
    )
    .await
    .with_context(|| format!("renewing the lease of partition {n}"))
}

/// Gives a lease up (only if it is still the one we hold).
pub async fn release(kv: &kv::Store, n: u32, revision: u64) -> anyhow::Result<()> {
    kv.delete_expect_revision(lease_key(n), Some(revision))
        .await
        .with_context(|| format!("releasing the lease of partition {n}"))
}

/// How many partitions each of `members` instances should own: an even
/// share, rounded up (so the shares cover every partition even while the
/// instances' views of who is a member differ for a moment).
pub fn fair_share(partitions: u32, members: usize) -> usize {
    (partitions as usize).div_ceil(members.max(1))
}

/// What an instance should do this round: the partitions to claim (in the
/// order to try them) and the ones to give up, given what it `owns`, which
/// leases are `held`, and the number of members. Free partitions are tried from a
/// place that depends on the instance (`start`), so instances starting
/// together mostly try different ones first.
pub fn plan(
    partitions: u32,
    members: usize,
    owns: &BTreeSet<u32>,
    held: &[bool],
    start: u32,
) -> (Vec<u32>, Vec<u32>) {
    let share = fair_share(partitions, members);
    if owns.len() > share {
        // Give up the highest-numbered ones: a deterministic choice.
        let release = owns
            .iter()
            .rev()
            .take(owns.len() - share)
            .copied()
            .collect();
        return (Vec::new(), release);
    }
    let want = share - owns.len();
    let claim = (0..partitions)
        .map(|i| (start + i) % partitions.max(1))
        .filter(|n| !owns.contains(n) && held.get(*n as usize) == Some(&false))
        .take(want)
        .collect();
    (claim, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_partition() {
        for n in 1..=64u32 {
            for m in 1..=10usize {
                assert!(fair_share(n, m) * m >= n as usize, "{n} over {m}");
                assert!(
                    fair_share(n, m) * m < n as usize + m,
                    "{n} over {m}: no more than needed"
                );
            }
        }
        assert_eq!(fair_share(8, 3), 3);
        assert_eq!(fair_share(8, 0), 8);
    }

    #[test]
    fn plan_claims_free_partitions_up_to_the_share_and_releases_the_excess() {
        let owners = |taken: &[u32]| {
            let mut v = vec![false; 8];
            for n in taken {
                v[*n as usize] = true;
            }
            v
        };
        // Alone: everything, starting at 5.
        let (claim, release) = plan(8, 1, &BTreeSet::new(), &owners(&[]), 5);
        assert_eq!(claim, vec![5, 6, 7, 0, 1, 2, 3, 4]);
        assert!(release.is_empty());
        // Three members, one owns 0..3: another takes three free ones.
        let taken = owners(&[0, 1, 2]);
        let (claim, _) = plan(8, 3, &BTreeSet::new(), &taken, 0);
        assert_eq!(claim, vec![3, 4, 5]);
        // An owner of everything, now one of three, releases five.
        let all: BTreeSet<u32> = (0..8).collect();
        let (claim, release) = plan(8, 3, &all, &owners(&[]), 0);
        assert!(claim.is_empty());
        assert_eq!(release, vec![7, 6, 5, 4, 3]);
        // At its share: nothing to do.
        let mine: BTreeSet<u32> = [0, 1, 2].into();
        assert_eq!(plan(8, 3, &mine, &taken, 0), (vec![], vec![]));
    }
}
