//! Who is calling the REST API: [`Authenticator::authenticate`] reads the HTTP Basic
//! `Authorization` header and answers with the [`Caller`], as OneForm's server does (§4.2:
//! `username:password` or `username:token`, checked by OpenNebula itself).
//!
//! - With an OpenNebula endpoint, the credentials are checked by calling `one.user.info(-1)`
//!   with the caller's own session; the answer gives the caller's id, name and groups. A
//!   success is remembered for a short while (bounded, keyed by an HMAC-SHA-256 of the whole
//!   `user:password` pair under a key this process made at start: a wrong password never
//!   matches a remembered right one, and the cache holds no password); a refusal is not, so
//!   a mistyped password costs nothing once corrected.
//! - Without one (no ONE_XMLRPC), only the one `user:password` pair formwork was given is
//!   accepted, as oneadmin.
//! - Failed logins slow down the client that makes them ([`Authenticator::authenticate_from`]),
//!   counted per client address (an IPv6 client by its /64) and user name, so that one user's
//!   typos behind a shared address (FireEdge's server, a NAT) never lock the others out: after
//!   `free_failures` refusals, each further attempt must wait twice as long as the last, up to
//!   `longest_wait`, and is refused unchecked until then; a success or `forget_failures_after`
//!   without a refusal clears it. An attempt is counted as a refusal *before* its credentials
//!   are checked, and taken back when they prove right (or OpenNebula cannot say), so guesses
//!   sent at once count as each other's refusals: at most `free_failures` of them reach
//!   OpenNebula. Remembered logins and minted sessions are checked before anything is counted
//!   (but after the wait: a client that must wait learns nothing), and requests bringing the
//!   credentials of a check in flight wait for its answer (`auth_flights`), so a user's burst
//!   of requests with the right password is one attempt. At most `failures_kept`
//!   pairs are remembered, the stale then the oldest making room (user names are kept as
//!   keyed hashes, so memory does not grow with their length).
//! - [`Authenticator::mint`] makes a session for a caller that this process accepts without
//!   asking OpenNebula until [`Authenticator::revoke`]. Playbooks get one per run
//!   ([`crate::stages::Sessions`]): a caller confined to reading their provision, opened when
//!   CONFIGURING_PROVISION starts and revoked when it ends; the inventory plugin reads the
//!   provision back through the API with it (ansible's `one_auth`).
//!
//! Nothing here logs a password or token, and no `Debug` shows one; log fields carry the user
//! name only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::Caller;
use crate::one::client::{self, Client, SetupError};
use crate::one::{self, Code};

/// Where credentials are checked.
#[derive(Clone)]
pub enum Mode {
    /// By OpenNebula at this XML-RPC endpoint (`http://host:2633/RPC2`).
    OpenNebula { endpoint: String },
    /// Only this pair, as oneadmin (formwork's ONE_AUTH file when no endpoint is configured).
    Single { user: String, password: String },
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::OpenNebula { endpoint } => f.debug_struct("OpenNebula").field("endpoint", endpoint).finish(),
            Mode::Single { user, .. } => {
                f.debug_struct("Single").field("user", user).field("password", &"<redacted>").finish()
            }
        }
    }
}

/// How much is remembered, for how long, and how long OpenNebula may take to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a successful login is remembered; a password changed in OpenNebula keeps
    /// working this long.
    pub cache_ttl: Duration,
    /// At most this many remembered logins; the expired, then the oldest, make room.
    pub cache_capacity: usize,
    /// At most this many minted sessions at once; the oldest makes room.
    pub minted_capacity: usize,
    /// The calls to OpenNebula: short, since a request waits for them.
    pub one: client::Options,
    /// Refused logins a client may make before it has to wait.
    pub free_failures: u32,
    /// The wait after the first refusal beyond those; it doubles with each further one.
    pub first_wait: Duration,
    /// The longest wait.
    pub longest_wait: Duration,
    /// A client's refusals are forgotten this long after its last one.
    pub forget_failures_after: Duration,
    /// At most this many clients' refusals are remembered.
    pub failures_kept: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 1024,
            minted_capacity: 1024,
            one: client::Options {
                connect_timeout: Duration::from_secs(3),
                request_timeout: Duration::from_secs(10),
                tries: 2,
                backoff: Duration::from_millis(100),
            },
            free_failures: 5,
            first_wait: Duration::from_secs(1),
            longest_wait: Duration::from_secs(60),
            forget_failures_after: Duration::from_secs(15 * 60),
            failures_kept: 4096,
        }
    }
}

/// Why a request has no caller. The API answers 401 for the first three, 502 for
/// `Unavailable` (`AuthError::status`, in `api::error`).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (OneForm's message, kept verbatim): 401.
    #[error("A username and password must be provided")]
    Missing,
    /// A header that is not `Basic base64(user:password)`: 401.
    #[error("{reason}; send `Authorization: Basic <base64 of username:password>`")]
    Malformed { reason: &'static str },
    /// OpenNebula (or the single accepted pair) refused the credentials (OneForm's message,
    /// kept verbatim): 401.
    #[error("Invalid credentials")]
    Invalid,
    /// OpenNebula could not say: unreachable, timed out, or an answer other than a user or an
    /// AUTHENTICATION refusal. The cause is kept: 502.
    #[error("cannot check the credentials with OpenNebula: {source}")]
    Unavailable { source: one::Error },
    /// Too many refused logins for this user from this client lately: 429, with the wait as
    /// Retry-After.
    #[error(
        "too many failed logins for this user from this address: wait {}s before trying again",
        wait.as_secs().max(1)
    )]
    Throttled { wait: Duration },
}

/// A `user:password` pair from a header. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<redacted>").finish()
    }
}

/// Reads `Basic <base64(user:password)>` (RFC 7617: the scheme in any case, the user id ends
/// at the first `:`, the password may hold more).
fn parse_basic(header: Option<&str>) -> Result<Credentials, AuthError> {
    let header = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, encoded) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed { reason: "the Authorization header is not HTTP Basic" });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::Malformed { reason: "the Basic credentials are not valid base64" })?;
    let text = String::from_utf8(decoded)
        .map_err(|_| AuthError::Malformed { reason: "the Basic credentials are not UTF-8 text" })?;
    let (user, password) = text
        .split_once(':')
        .ok_or(AuthError::Malformed { reason: "the Basic credentials have no ':' between username and password" })?;
    Ok(Credentials { user: user.to_owned(), password: password.to_owned() })
}

/// The user name an `Authorization` header gives, right or wrong, for the audit log; never
/// the password.
pub fn claimed_user(authorization: Option<&str>) -> Option<String> {
    parse_basic(authorization).ok().map(|c| c.user)
}

/// Compares secrets in time that depends only on their lengths, not on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Checks the callers of the API. Share it (`Arc`) between requests; it locks only briefly
/// and never across an `.await`.
pub struct Authenticator {
    check: Check,
    limits: Limits,
    logins: Mutex<Logins>,
    minted: Mutex<Minted>,
    failures: Mutex<Failures>,
    flights: flights::Flights,
    clock: Clock,
}

/// [`Mode`] made ready: the endpoint checked and its client built once.
enum Check {
    OpenNebula(Box<Client>),
    Single(Credentials),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.check {
            Check::OpenNebula(client) => format!("{client:?}"),
            Check::Single(credentials) => format!("{credentials:?}"),
        };
        f.debug_struct("Authenticator").field("mode", &mode).field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator for `mode`; an OpenNebula endpoint that is not a valid URL is refused
    /// now rather than on every request.
    pub fn new(mode: Mode, limits: Limits) -> Result<Authenticator, SetupError> {
        let check = match mode {
            Mode::OpenNebula { endpoint } => {
                Check::OpenNebula(Box::new(Client::new(&endpoint, String::new(), limits.one)?))
            }
            Mode::Single { user, password } => Check::Single(Credentials { user, password }),
        };
        Ok(Authenticator {
            check,
            limits,
            logins: Mutex::new(Logins::default()),
            minted: Mutex::new(Minted::default()),
            failures: Mutex::new(Failures::default()),
            flights: flights::Flights::default(),
            clock: Arc::new(Instant::now),
        })
    }

    /// The same authenticator reading time from `clock`, for tests of expiry.
    #[cfg(test)]
    fn with_clock(mut self, clock: Clock) -> Authenticator {
        self.clock = clock;
        self
    }

    /// [`Authenticator::authenticate`] for a request from `client`, slowed down by that client's
    /// recent refusals: while it must wait, the credentials are not even checked. The attempt
    /// is counted before OpenNebula is asked, and a check of the same credentials already in
    /// flight is waited for instead (see the module's doc).
    pub async fn authenticate_from(&self, client: IpAddr, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let credentials = parse_basic(authorization)?;
        let claimant = self.failures.lock().unwrap().key(client, &credentials.user);
        let throttled = |wait| AuthError::Throttled { wait };
        if let Some(wait) = self.failures.lock().unwrap().wait(claimant, (self.clock)(), &self.limits) {
            return Err(throttled(wait));
        }
        if let Some(caller) = self.remembered(&credentials) {
            return Ok(caller);
        }
        let key = self.logins.lock().unwrap().key_of(&credentials);
        let flight = match self.flights.join(key) {
            flights::Joined::Leader(flight) => Some(flight),
            flights::Joined::Follower(waiting) => match flights::answered(waiting).await {
                Some(answer) => return answer,
                None => None,
            },
        };
        self.failures.lock().unwrap().attempt(claimant, (self.clock)(), &self.limits).map_err(throttled)?;
        let result = self.check(credentials).await;
        {
            let mut failures = self.failures.lock().unwrap();
            match &result {
                Ok(_) => failures.forget(claimant),
                Err(AuthError::Invalid) => failures.refused_again(claimant, (self.clock)()),
                Err(_) => failures.forgive(claimant),
            }
        }
        if let Some(flight) = flight {
            flight.answer(&result);
        }
        result
    }

    /// The caller the raw `Authorization` header value names (`None` when the request has
    /// none; a value that is not text should be passed as `Some("")`, which is malformed).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        self.identify(parse_basic(authorization)?).await
    }

    /// Whether `credentials` name a caller: a minted session, a remembered login, the single
    /// accepted pair, or a login OpenNebula accepts (then remembered for a while).
    async fn identify(&self, credentials: Credentials) -> Result<Caller, AuthError> {
        match self.remembered(&credentials) {
            Some(caller) => Ok(caller),
            None => self.check(credentials).await,
        }
    }

    /// The caller a minted session or a remembered login stands for; nobody is asked.
    fn remembered(&self, credentials: &Credentials) -> Option<Caller> {
        if let Some(caller) = self.minted.lock().unwrap().caller(credentials) {
            return Some(caller);
        }
        let Check::OpenNebula(_) = &self.check else { return None };
        self.logins.lock().unwrap().get(credentials, (self.clock)(), self.limits.cache_ttl)
    }

    /// Checks credentials nothing remembers: against the single accepted pair, or by asking
    /// OpenNebula (a success is remembered).
    async fn check(&self, credentials: Credentials) -> Result<Caller, AuthError> {
        let client = match &self.check {
            Check::Single(accepted) => {
                let user_matches = same_secret(&credentials.user, &accepted.user);
                if user_matches & same_secret(&credentials.password, &accepted.password) {
                    return Ok(Caller::local());
                }
                tracing::debug!(user = %credentials.user, "refused credentials: not the configured user");
                return Err(AuthError::Invalid);
            }
            Check::OpenNebula(client) => client,
        };
        let caller = ask_opennebula(client, &credentials).await?;
        let now = (self.clock)();
        self.logins.lock().unwrap().insert(&credentials, caller.clone(), now, &self.limits);
        Ok(caller)
    }

    /// A session `"<uname>:<token>"` that [`Authenticator::authenticate`] accepts as `caller`,
    /// without asking OpenNebula, until [`Authenticator::revoke`]; at most `minted_capacity`
    /// at once, the oldest forgotten to make room.
    ///
    /// # Panics
    /// If the system's random source cannot be read, where no secret can be made.
    pub fn mint(&self, caller: &Caller) -> String {
        let token = self.minted.lock().unwrap().insert(caller.clone(), self.limits.minted_capacity);
        format!("{}:{token}", caller.uname)
    }

    /// Ends a minted session: it is an ordinary (wrong) password from now on.
    pub fn revoke(&self, session: &str) {
        if let Some((_, token)) = session.split_once(':') {
            self.minted.lock().unwrap().by_token.remove(token);
        }
    }
}

/// Playbook sessions: oneadmin's identity confined to reading one provision.
impl crate::stages::Sessions for Authenticator {
    fn open(&self, provision_id: i64) -> String {
        self.mint(&Caller::local().confined(provision_id))
    }

    fn close(&self, session: &str) {
        self.revoke(session);
    }
}

/// `one.user.info(-1)` with the caller's own session.
async fn ask_opennebula(client: &Client, credentials: &Credentials) -> Result<Caller, AuthError> {
    let session = format!("{}:{}", credentials.user, credentials.password);
    match client.with_session(session).user_info().await {
        Ok(user) => {
            tracing::debug!(user = %user.name, uid = user.id, "OpenNebula accepted the credentials");
            let (uid, uname, gid, gname, groups) = (user.id, user.name, user.gid, user.gname, user.groups);
            Ok(Caller { uid, uname, gid, gname, groups, confined_to: None })
        }
        Err(e) if e.code() == Some(Code::Authentication) => {
            tracing::debug!(user = %credentials.user, "OpenNebula refused the credentials");
            Err(AuthError::Invalid)
        }
        Err(source) => Err(AuthError::Unavailable { source }),
    }
}

/// A remembered login's key: HMAC-SHA-256 of `user:password` under [`Logins::key`].
type LoginKey = [u8; 32];

/// Logins OpenNebula accepted, by a keyed hash of the whole `user:password` pair.
struct Logins {
    entries: HashMap<LoginKey, Login>,
    /// Insertion counter: the smallest `order` is the oldest entry.
    next: u64,
    /// Made at start from the system's random source and never stored: a remembered key is
    /// no use outside this process, and holds no password.
    key: ring::hmac::Key,
}

struct Login {
    caller: Caller,
    at: Instant,
    order: u64,
}

impl Default for Logins {
    /// # Panics
    /// If the system's random source cannot be read.
    fn default() -> Logins {
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .unwrap_or_else(|_| panic!("cannot read the system's random source to key the login cache"));
        Logins { entries: HashMap::new(), next: 0, key }
    }
}

impl Logins {
    fn key_of(&self, credentials: &Credentials) -> LoginKey {
        let mut mac = ring::hmac::Context::with_key(&self.key);
        // A user name holds no ':' (the header's pair splits at the first one): unambiguous.
        for part in [credentials.user.as_bytes(), b":", credentials.password.as_bytes()] {
            mac.update(part);
        }
        mac.sign().as_ref().try_into().expect("HMAC-SHA-256 is 32 bytes")
    }

    fn get(&mut self, credentials: &Credentials, now: Instant, ttl: Duration) -> Option<Caller> {
        let key = self.key_of(credentials);
        let login = self.entries.get(&key)?;
        if now.saturating_duration_since(login.at) < ttl {
            return Some(login.caller.clone());
        }
        self.entries.remove(&key);
        None
    }

    fn insert(&mut self, credentials: &Credentials, caller: Caller, now: Instant, limits: &Limits) {
        if limits.cache_capacity == 0 {
            return;
        }
        let key = self.key_of(credentials);
        if !self.entries.contains_key(&key) {
            let stale = |login: &Login| now.saturating_duration_since(login.at) >= limits.cache_ttl;
            make_room(&mut self.entries, limits.cache_capacity, stale, |login| login.order);
        }
        self.next += 1;
        self.entries.insert(key, Login { caller, at: now, order: self.next });
    }
}

/// Makes room for one more entry in a map of at most `capacity`: drops the stale entries and,
/// if it is still full, the first by `order` (the oldest).
fn make_room<K: Clone + Eq + std::hash::Hash, V, O: Ord>(
    map: &mut HashMap<K, V>,
    capacity: usize,
    stale: impl Fn(&V) -> bool,
    order: impl Fn(&V) -> O,
) {
    if map.len() < capacity {
        return;
    }
    map.retain(|_, v| !stale(v));
    if map.len() >= capacity
        && let Some(oldest) = map.iter().min_by_key(|(_, v)| order(v)).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

/// Refused logins by client address and user name.
#[derive(Default)]
struct Failures {
    by_client: HashMap<Claimant, Failure>,
    /// Hashes user names with a key of this process's own.
    names: std::hash::RandomState,
}

/// Who a failure is counted for: an address and a user name's hash.
type Claimant = (IpAddr, u64);

struct Failure {
    count: u32,
    last: Instant,
}

impl Failures {
    /// Whom failures are counted for: `user` at `client`.
    fn key(&self, client: IpAddr, user: &str) -> Claimant {
        use std::hash::BuildHasher as _;
        (Failures::address(client), self.names.hash_one(user))
    }

    /// The address failures are counted under: an IPv4 address (also when IPv4-mapped), or
    /// an IPv6 client's /64, which one machine can roam across.
    fn address(client: IpAddr) -> IpAddr {
        match client {
            IpAddr::V4(_) => client,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
        }
    }

    /// How long `client` must still wait, if it must.
    fn wait(&self, client: Claimant, now: Instant, limits: &Limits) -> Option<Duration> {
        let failure = self.by_client.get(&client)?;
        let beyond = failure.count.checked_sub(limits.free_failures)?;
        let wait = limits.first_wait.saturating_mul(1 << beyond.min(30)).min(limits.longest_wait);
        let waited = now.saturating_duration_since(failure.last);
        (waited < wait).then(|| wait - waited)
    }

    fn refused(&mut self, client: Claimant, now: Instant, limits: &Limits) {
        if limits.failures_kept == 0 {
            return;
        }
        if !self.by_client.contains_key(&client) {
            let stale = |f: &Failure| now.saturating_duration_since(f.last) >= limits.forget_failures_after;
            make_room(&mut self.by_client, limits.failures_kept, stale, |f| f.last);
        }
        let failure = self.by_client.entry(client).or_insert(Failure { count: 0, last: now });
        if now.saturating_duration_since(failure.last) >= limits.forget_failures_after {
            failure.count = 0;
        }
        failure.count += 1;
        failure.last = now;
    }

    /// Counts an attempt of `client` as a refusal before it is checked, so that attempts made
    /// at once count against each other; refused (with the wait) while `client` must wait.
    fn attempt(&mut self, client: Claimant, now: Instant, limits: &Limits) -> Result<(), Duration> {
        if let Some(wait) = self.wait(client, now, limits) {
            return Err(wait);
        }
        self.refused(client, now, limits);
        Ok(())
    }

    /// An attempt counted by [`Failures::attempt`] was refused: the wait runs from now.
    fn refused_again(&mut self, client: Claimant, now: Instant) {
        if let Some(failure) = self.by_client.get_mut(&client) {
            failure.last = failure.last.max(now);
        }
    }

    /// An attempt counted by [`Failures::attempt`] was not a refusal (OpenNebula could not
    /// say): it is taken back.
    fn forgive(&mut self, client: Claimant) {
        if let Some(failure) = self.by_client.get_mut(&client) {
            failure.count = failure.count.saturating_sub(1);
            if failure.count == 0 {
                self.by_client.remove(&client);
            }
        }
    }

    fn forget(&mut self, client: Claimant) {
        self.by_client.remove(&client);
    }
}

/// Minted sessions: token → the caller it stands for.
#[derive(Default)]
struct Minted {
    by_token: HashMap<String, MintedSession>,
    next: u64,
}

struct MintedSession {
    caller: Caller,
    order: u64,
}

impl Minted {
    fn caller(&self, credentials: &Credentials) -> Option<Caller> {
        let session = self.by_token.get(&credentials.password)?;
        (session.caller.uname == credentials.user).then(|| session.caller.clone())
    }

    fn insert(&mut self, caller: Caller, capacity: usize) -> String {
        make_room(&mut self.by_token, capacity.max(1), |_| false, |session| session.order);
        let token = random_token();
        self.next += 1;
        self.by_token.insert(token.clone(), MintedSession { caller, order: self.next });
        token
    }
}

/// 32 bytes from the system's CSPRNG, as 64 hex digits.
fn random_token() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("cannot read the system's random source to make a session token"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[path = "auth_flights.rs"]
mod flights;

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
