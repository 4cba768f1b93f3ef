//! Where a join goes in a cluster: to the node that owns the room, or, for a room no node holds,
//! to the serving node with the least load, which it is then claimed for.

use roomcast_cluster::{Claim, NodeId};
use roomcast_sfu::RoomId;

use crate::ClusterMember;

/// The node a join is served on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// This node: it is not in a cluster, or it holds the room now.
    Here,
    /// Another node holds the room: relay the session to it.
    There(NodeId),
}

/// Places a join for `room`; `open_here` says this node runs a room of that id. An invalid room
/// is placed here, where the join refuses it.
pub(crate) async fn place(
    cluster: Option<&ClusterMember>,
    room: &str,
    open_here: bool,
) -> Result<Placement, String> {
    let Some(cluster) = cluster else {
        return Ok(Placement::Here);
    };
    if RoomId::parse(room).is_none() {
        return Ok(Placement::Here);
    }
    let unavailable = |error: roomcast_cluster::ClusterError| {
        tracing::debug!(%error, "could not place a room");
        "the cluster is unavailable; try again shortly".to_owned()
    };
    let me = cluster.claims.node();
    let owner = match cluster.claims.owner(room).await.map_err(unavailable)? {
        Some(owner) => owner,
        // Unclaimed yet running here: Redis lost the claim (it restarted empty, or was out of
        // reach past the lease) and the heartbeat has not renewed it yet. Placing it anywhere
        // else would open a second room of that name.
        None if open_here => me.clone(),
        None => {
            let nodes = cluster.registry.nodes().await.map_err(unavailable)?;
            let target =
                roomcast_cluster::place(&nodes).map_or_else(|| me.clone(), |n| n.id.clone());
            cluster
                .claims
                .claim_for(room, &target)
                .await
                .map_err(unavailable)?
        }
    };
    if &owner != me {
        return Ok(Placement::There(owner));
    }
    // Ours: claim again, which renews the hold (the room may have been claimed for us by
    // another node's placement a moment ago).
    match cluster.claims.claim(room).await.map_err(unavailable)? {
        Claim::Mine => Ok(Placement::Here),
        Claim::Elsewhere(owner) => Ok(Placement::There(owner)),
    }
}
