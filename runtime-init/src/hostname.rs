//! Step Hostname: the UTS namespace's host and domain names, when the spec
//! sets them. Whether a new UTS namespace was made is the runtime's call.

use rustix::system::{setdomainname, sethostname};

use crate::error::{Error, Result};

pub fn set(hostname: Option<&str>, domainname: Option<&str>) -> Result<()> {
    if let Some(name) = hostname {
        sethostname(name.as_bytes()).map_err(|errno| Error::Hostname {
            op: "sethostname",
            name: name.to_owned(),
            errno,
        })?;
    }
    if let Some(name) = domainname {
        setdomainname(name.as_bytes()).map_err(|errno| Error::Hostname {
            op: "setdomainname",
            name: name.to_owned(),
            errno,
        })?;
    }
    Ok(())
}
