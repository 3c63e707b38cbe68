//! Network namespaces for fault tests: each member gets a namespace of its own, joined to a
//! bridge in the test's namespace by a veth pair, so the test can cut links between members
//! while it still reaches every member itself.
//!
//! This kernel has no iptables, nftables or tc, so a cut works on the neighbour tables: every
//! member has permanent ARP entries for its peers, and cutting `i`–`j` replaces each side's
//! entry for the other by a MAC address nobody owns (the bridge drops those frames). Healing
//! restores the real addresses. Entries for the bridge's own address (the test's clients) are
//! never touched.
//!
//! Needs root (CAP_NET_ADMIN) and `ip`; [`NetLab::create`] returns `None` otherwise and the
//! caller skips loudly. Everything the lab made is removed when it is dropped.

use std::process::Command;

/// A MAC address no interface has: frames to it go nowhere.
const UNOWNED_MAC: &str = "02:00:5e:00:00:99";

/// The namespaces, veths and bridge of one test.
pub struct NetLab {
    tag: String,
    subnet: String,
    members: usize,
    macs: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_in(ns: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .map_err(|e| format!("running ip netns exec: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "in {ns}: {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why namespace tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    // `id -u` rather than geteuid: this crate has no libc binding.
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.as_deref() != Some("0") {
        return Some("not root: network namespaces need CAP_NET_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the `ip` command (iproute2) is missing".into());
    }
    None
}

impl NetLab {
    /// Creates `members` namespaces on a fresh bridge, or explains why it cannot.
    pub fn create(members: usize) -> Result<NetLab, String> {
        assert!(members < 250, "one /24 per lab");
        if let Some(why) = unavailable() {
            return Err(why);
        }
        // Names must fit IFNAMSIZ (15); the process id keeps concurrent test processes apart,
        // and so does the subnet derived from it.
        let pid = std::process::id();
        let tag = format!("qf{}", pid % 100_000);
        let subnet = format!("10.{}.{}", 100 + (pid / 250) % 100, pid % 250);
        let mut lab = NetLab {
            tag,
            subnet,
            members,
            macs: Vec::new(),
        };
        lab.remove();
        lab.build()?;
        Ok(lab)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// Member `i`'s namespace.
    pub fn namespace(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    /// Member `i`'s address.
    pub fn host(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    fn build(&mut self) -> Result<(), String> {
        let br = self.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.254/24", self.subnet),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..self.members {
            let ns = self.namespace(i);
            let veth = format!("{}v{i}", self.tag);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &br, "up"])?;
            ip_in(
                &ns,
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("{}/24", self.host(i)),
                    "dev",
                    "eth0",
                ],
            )?;
            ip_in(&ns, &["ip", "link", "set", "eth0", "up"])?;
            ip_in(&ns, &["ip", "link", "set", "lo", "up"])?;
            let mac = ip_in(&ns, &["cat", "/sys/class/net/eth0/address"])?;
            self.macs.push(mac.trim().to_string());
        }
        for i in 0..self.members {
            for j in 0..self.members {
                if i != j {
                    self.set_neighbour(i, j, &self.macs[j].clone())?;
                }
            }
        }
        Ok(())
    }

    fn set_neighbour(&self, i: usize, j: usize, mac: &str) -> Result<(), String> {
        ip_in(
            &self.namespace(i),
            &[
                "ip",
                "neigh",
                "replace",
                &self.host(j),
                "lladdr",
                mac,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
        )
        .map(|_| ())
    }

    /// Drops every packet between members `i` and `j`, both ways.
    pub fn cut(&self, i: usize, j: usize) {
        self.set_neighbour(i, j, UNOWNED_MAC).expect("cut a link");
        self.set_neighbour(j, i, UNOWNED_MAC).expect("cut a link");
    }

    /// Restores the link between `i` and `j`.
    pub fn heal(&self, i: usize, j: usize) {
        self.set_neighbour(i, j, &self.macs[j])
            .expect("heal a link");
        self.set_neighbour(j, i, &self.macs[i])
            .expect("heal a link");
    }

    /// Cuts member `i` off from every other member (the test still reaches it).
    pub fn isolate(&self, i: usize) {
        for j in (0..self.members).filter(|&j| j != i) {
            self.cut(i, j);
        }
    }

    /// Heals every link of member `i`.
    pub fn rejoin(&self, i: usize) {
        for j in (0..self.members).filter(|&j| j != i) {
            self.heal(i, j);
        }
    }

    /// Removes what this lab (or an earlier process with the same tag) made; errors ignored.
    fn remove(&self) {
        for i in 0..self.members {
            let _ = ip(&["netns", "del", &self.namespace(i)]);
            let _ = ip(&["link", "del", &format!("{}v{i}", self.tag)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        self.remove();
    }
}
