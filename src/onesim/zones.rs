//! Zones as a single-zone oned answers them (FireEdge reads them at login): zone 0,
//! `OpenNebula`, enabled, whose TEMPLATE's ENDPOINT is this endpoint's URL, and no HA servers
//! (`<SERVER_POOL/>`). oned 7 also writes ENDPOINT_GRPC; onesim has no gRPC endpoint, so it
//! leaves it out (OpenNebula's zone.xsd has ENDPOINT alone). The default ACL `* ZONE/* USE`
//! lets every user read them.

use crate::one::Code;

use super::answer::{self, Answer};
use super::methods::Ctx;
use super::params::Params;
use super::xml::Xml;

pub const METHODS: &[&str] = &["one.zone.info", "one.zonepool.info"];

/// Runs a known method of [`METHODS`]: `one.zone.info(id[, decrypt])`, `one.zonepool.info()`.
pub fn call(ctx: &Ctx<'_>, p: &Params<'_>) -> Answer {
    let mut x = Xml::default();
    if ctx.method == "one.zonepool.info" {
        x.open("ZONE_POOL");
        render(&mut x, ctx.endpoint);
        return answer::xml(x.close("ZONE_POOL").finish());
    }
    let id = p.int(1)?;
    p.opt_boolean(2)?;
    if id != 0 {
        return Err(ctx.refuse(Code::NoExists, "zone", id, ""));
    }
    render(&mut x, ctx.endpoint);
    answer::xml(x.finish())
}

fn render(x: &mut Xml, endpoint: &str) {
    x.open("ZONE").leaf("ID", 0).leaf("NAME", "OpenNebula").leaf("STATE", 0);
    x.open("TEMPLATE").cdata("ENDPOINT", endpoint).close("TEMPLATE");
    x.empty("SERVER_POOL").close("ZONE");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one::FakeOne;
    use crate::one::xmlrpc::Value;
    use crate::onesim::answer::Refusal;
    use crate::onesim::sim::User;

    fn ask(method: &str, id: i64) -> Result<Value, Refusal> {
        let (one, users) = (FakeOne::new(), [User::core(2, "alice", "pw", User::USERS_GROUP)]);
        let ctx = Ctx { one: &one, user: &users[0], users: &users, method, endpoint: "http://127.0.0.1:9/RPC2" };
        call(&ctx, &Params(&[Value::String("session".into()), Value::Int(id)]))
    }

    #[test]
    fn the_one_zone_names_this_endpoint() {
        let zone = "<ZONE><ID>0</ID><NAME>OpenNebula</NAME><STATE>0</STATE>\
                    <TEMPLATE><ENDPOINT><![CDATA[http://127.0.0.1:9/RPC2]]></ENDPOINT></TEMPLATE>\
                    <SERVER_POOL/></ZONE>";
        assert_eq!(ask("one.zone.info", 0), Ok(Value::String(zone.into())));
        assert_eq!(ask("one.zonepool.info", 0), Ok(Value::String(format!("<ZONE_POOL>{zone}</ZONE_POOL>"))));
        let Err(Refusal::One { code, message, id }) = ask("one.zone.info", 1) else { panic!("zone 1 exists") };
        assert_eq!((code, message.as_str(), id), (Code::NoExists, "[one.zone.info] Error getting zone [1].", 1));
    }
}
