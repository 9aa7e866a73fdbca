//! One workload's stream without a socket: the standalone authorizer (`alp server
//! --datastore`), `alp calc` and `alp eval --datastore` run the calculator in-process and read
//! what the agent's processor would send that one workload.

use alp_proto::felix::ToDataplane;

use crate::{Outgoing, Processor};

/// One workload's view of the processor's output: what its stream would carry.
#[derive(Debug)]
pub struct WorkloadFeed {
    processor: Processor,
    workload_id: String,
}

impl WorkloadFeed {
    /// Joins `workload_id` (`NS/POD`) on a fresh processor; returns the feed and what the
    /// stream is sent first.
    pub fn new(workload_id: &str) -> (Self, Vec<ToDataplane>) {
        let mut processor = Processor::new();
        let (_, first) = processor.join(workload_id);
        (WorkloadFeed { processor, workload_id: workload_id.to_owned() }, first)
    }

    /// Applies the calculator's global messages; returns what the workload receives.
    pub fn apply(&mut self, messages: Vec<ToDataplane>) -> Vec<ToDataplane> {
        let mut out = Vec::new();
        for m in messages {
            for (key, outgoing) in self.processor.apply(m) {
                if key != self.workload_id {
                    continue;
                }
                match outgoing {
                    Outgoing::Message(m) => out.push(m),
                    Outgoing::End => {
                        // The workload went away: the stream ends; rejoin so a return is seen.
                        out.extend(self.processor.join(&self.workload_id).1);
                    }
                }
            }
        }
        out
    }

    /// What a stream of `workload_id` that joins after the calculator has sent `global` (its
    /// whole output so far) is sent first: the one-shot view of `alp calc` and `alp eval
    /// --datastore`.
    pub fn join_after(global: impl IntoIterator<Item = ToDataplane>, workload_id: &str) -> Vec<ToDataplane> {
        let mut processor = Processor::new();
        for m in global {
            let _ = processor.apply(m);
        }
        processor.join(workload_id).1
    }
}
