//! `alarm list|disarm`: etcdctl's commands over `Maintenance.Alarm`.
//!
//! Both print one line per alarm as etcdctl does (`memberID:10501334649042878790 alarm:NOSPACE`),
//! or the response as JSON with `-w json`. `disarm` does what etcd's client does for an empty
//! selection: it lists the active alarms and deactivates each, printing the ones it disarmed.

use qraft_core::server::describe_alarm;
use qraft_io::client::Client;
use qraft_proto::etcdserverpb::alarm_request::AlarmAction;
use qraft_proto::etcdserverpb::{AlarmRequest, AlarmResponse, AlarmType};
use serde_json::json;

use super::args::AlarmCommand;
use super::output::{Printer, header_json};
use super::server_error;

pub async fn run(client: &Client, cmd: &AlarmCommand, p: &Printer) -> anyhow::Result<()> {
    let listed = client
        .alarm(request(AlarmAction::Get, 0, AlarmType::None))
        .await
        .map_err(server_error)?;
    let response = match cmd {
        AlarmCommand::List => listed,
        AlarmCommand::Disarm => {
            let mut disarmed = AlarmResponse {
                header: listed.header,
                alarms: Vec::new(),
            };
            for alarm in &listed.alarms {
                let kind = AlarmType::try_from(alarm.alarm).unwrap_or(AlarmType::None);
                let r = client
                    .alarm(request(AlarmAction::Deactivate, alarm.member_id, kind))
                    .await
                    .map_err(server_error)?;
                disarmed.header = r.header;
                disarmed.alarms.extend(r.alarms);
            }
            disarmed
        }
    };
    print(&response, p);
    Ok(())
}

fn request(action: AlarmAction, member_id: u64, alarm: AlarmType) -> AlarmRequest {
    AlarmRequest {
        action: action as i32,
        member_id,
        alarm: alarm as i32,
    }
}

fn print(response: &AlarmResponse, p: &Printer) {
    if p.is_json() {
        let alarms: Vec<_> = response
            .alarms
            .iter()
            .map(|a| json!({"memberID": a.member_id, "alarm": a.alarm}))
            .collect();
        let mut value = json!({ "header": header_json(response.header.as_ref()) });
        if !alarms.is_empty() {
            value["alarms"] = json!(alarms);
        }
        p.print_json(&value);
    } else {
        for alarm in &response.alarms {
            println!("{}", describe_alarm(alarm));
        }
    }
}
