//! Step OomScoreAdj: `/proc/self/oom_score_adj`, inherited by the workload.
//! Lowering it below the current value needs `CAP_SYS_RESOURCE`, which the
//! init still has here (before the user and capability steps).

use crate::error::{Error, Result, errno_of};

pub fn set(value: Option<i32>) -> Result<()> {
    let Some(value) = value else { return Ok(()) };
    std::fs::write("/proc/self/oom_score_adj", value.to_string()).map_err(|e| Error::OomScoreAdj {
        value,
        errno: errno_of(&e),
    })
}
