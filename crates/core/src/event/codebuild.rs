//! `aws.codebuild` build state and phase changes.

use super::lenient::Obj;
use super::{BuildLogs, BuildPhaseChange, BuildStateChange, BuildStatus, ParseError};

pub(crate) fn build_state(detail: Obj<'_>) -> Result<BuildStateChange, ParseError> {
    let raw = detail.req_str("build-status")?;
    let status = BuildStatus::from_wire(raw)
        .or_else(|| {
            raw.eq_ignore_ascii_case("FAULT")
                .then_some(BuildStatus::FaultOrTimedOut)
        })
        .ok_or_else(|| ParseError::UnknownValue {
            field: "detail.build-status".into(),
            value: raw.chars().take(64).collect(),
            expected: BuildStatus::ALL.join(", "),
        })?;
    let info = detail.opt_obj("additional-information", "detail.additional-information")?;
    Ok(BuildStateChange {
        project: detail.req_str("project-name")?.to_string(),
        build_id: detail.req_str("build-id")?.to_string(),
        status,
        logs: logs(info)?,
        build_start_time: match info {
            Some(i) => i.opt_string("build-start-time")?,
            None => None,
        },
    })
}

pub(crate) fn build_phase(detail: Obj<'_>) -> Result<BuildPhaseChange, ParseError> {
    let info = detail.opt_obj("additional-information", "detail.additional-information")?;
    Ok(BuildPhaseChange {
        project: detail.req_str("project-name")?.to_string(),
        build_id: detail.req_str("build-id")?.to_string(),
        completed_phase: detail.req_str("completed-phase")?.to_string(),
        completed_phase_status: detail.opt_string("completed-phase-status")?,
        completed_phase_duration_secs: detail
            .opt_f64("completed-phase-duration-seconds")?
            .filter(|v| *v >= 0.0)
            .map(|v| v as u64),
        logs: logs(info)?,
    })
}

fn logs(info: Option<Obj<'_>>) -> Result<Option<BuildLogs>, ParseError> {
    let Some(info) = info else { return Ok(None) };
    let Some(logs) = info.opt_obj("logs", "detail.additional-information.logs")? else {
        return Ok(None);
    };
    Ok(Some(BuildLogs {
        group_name: logs.opt_string("group-name")?,
        stream_name: logs.opt_string("stream-name")?,
        deep_link: logs.opt_string("deep-link")?,
    }))
}
