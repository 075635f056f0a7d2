//! The rule table. Each rule: an id (the finding's `kind`), a title for
//! messages, keywords for the prefilter (lower case; a rule runs only on
//! strings that contain one of them, case-insensitively), an ASCII-mode
//! regex, the capture group that holds the secret (0 = the whole match), a
//! severity, how specific it is, an optional minimum Shannon entropy of the
//! secret (bits per byte), an optional extra check, and examples: templates
//! (see `testkit`) that must produce a finding of this rule (`tp`, with the
//! secret between `<<` and `>>` where given) or must not (`fp`).

use crate::checks;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// How specific a rule is; where matches overlap the more specific wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// An assignment to a secret-sounding name (`generic-api-key`, `password-assignment`).
    Generic,
    /// A value shape that is only a secret next to a service name (`twilio ... = <32 hex>`).
    Keyed,
    /// A format of its own: a vendor prefix, a PEM block, a URL scheme.
    Format,
}

pub type Check = fn(whole: &[u8], value: &[u8]) -> bool;

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub keywords: &'static [&'static str],
    pub regex: &'static str,
    pub group: usize,
    pub severity: Severity,
    pub tier: Tier,
    pub entropy: Option<f32>,
    pub check: Option<Check>,
    pub tp: &'static [&'static str],
    pub fp: &'static [&'static str],
}

/// A rule with defaults: the whole match of group 1, high severity, its own
/// format, a minimum entropy of 3.0 (a repeated or sequential stand-in is
/// not a secret).
const fn rule(
    id: &'static str,
    title: &'static str,
    keywords: &'static [&'static str],
    regex: &'static str,
) -> Rule {
    Rule {
        id,
        title,
        keywords,
        regex,
        group: 1,
        severity: Severity::High,
        tier: Tier::Format,
        entropy: Some(3.0),
        check: None,
        tp: &[],
        fp: &[],
    }
}

impl Rule {
    const fn sev(mut self, severity: Severity) -> Rule {
        self.severity = severity;
        self
    }
    const fn keyed(mut self) -> Rule {
        self.tier = Tier::Keyed;
        self
    }
    const fn generic(mut self) -> Rule {
        self.tier = Tier::Generic;
        self
    }
    const fn group(mut self, group: usize) -> Rule {
        self.group = group;
        self
    }
    const fn entropy(mut self, minimum: Option<f32>) -> Rule {
        self.entropy = minimum;
        self
    }
    const fn check(mut self, check: Check) -> Rule {
        self.check = Some(check);
        self
    }
    const fn tp(mut self, examples: &'static [&'static str]) -> Rule {
        self.tp = examples;
        self
    }
    const fn fp(mut self, examples: &'static [&'static str]) -> Rule {
        self.fp = examples;
        self
    }
}

/// `NAME... = VALUE`: a service name (case-insensitive) starting an
/// assignment's name, then the value (case-sensitive) in group 1.
macro_rules! keyed {
    ($name:literal, $value:literal) => {
        concat!(
            r#"(?i)(?:"#,
            $name,
            r#")[A-Za-z0-9_.-]{0,30}["']?\s{0,3}(?::=|=>|[:=])\s{0,3}["'`]?((?-i:"#,
            $value,
            r#"))(?:["'`\s;,&)\\]|$)"#
        )
    };
}

/// `scheme://user:password@`: the password in group 2.
macro_rules! url_password {
    ($schemes:literal) => {
        concat!(
            r#"(?i)\b(?:"#,
            $schemes,
            r#")://([^\s:/?#@"'`]{0,128}):([^\s/?#@"'`]{1,256})@"#
        )
    };
}

use Severity::{Critical, Medium};

pub static RULES: &[Rule] = &[
    // ---- Private keys, tokens by structure -------------------------------------------
    rule(
        "private-key",
        "Private key (PEM or PGP block)",
        &["-----begin"],
        r"(?s)(-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----.{64,}?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?:\s|\\[rn])+(?:[A-Za-z0-9+/=]{40,}(?:\s|\\[rn])+)+[A-Za-z0-9+/=]{40,})",
    )
    .sev(Critical)
    .tp(&[
        "<<-----BEGIN RSA PRIVATE KEY-----\nMII[[b61]]\n[[b64]]\n[[b64]]\n[[b20]]==\n-----END RSA PRIVATE KEY----->>\n",
        r#"{"private_key": "<<-----BEGIN PRIVATE KEY-----\nMIIE[[b60]]\n[[b64]]\n-----END PRIVATE KEY----->>\n"}"#,
        "key: <<-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE[[b45]]\n[[b64]]>>",
        "<<-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBF[[b58]]\n[[b64]]\n=[[b4]]\n-----END PGP PRIVATE KEY BLOCK----->>",
    ])
    .fp(&[
        "-----BEGIN PUBLIC KEY-----\nMFkw[[b60]]\n[[b24]]\n-----END PUBLIC KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "Paste the block that starts with -----BEGIN OPENSSH PRIVATE KEY----- here.",
    ]),
    rule(
        "putty-private-key",
        "PuTTY private key file",
        &["putty-user-key-file"],
        r"(?s)(PuTTY-User-Key-File-[23]: .{1,3000}?Private-Lines: \d+(?:\r?\n|\\r?\\n)(?:[A-Za-z0-9+/=]{1,64}(?:\r?\n|\\r?\\n))*[A-Za-z0-9+/=]{1,64})(?:\r?\n|\\r?\\n|$)",
    )
    .sev(Critical)
    .tp(&["<<PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: k\nPublic-Lines: 1\nAAAAB3NzaC1yc2E[[b49]]\nPrivate-Lines: 2\n[[b64]]\n[[b40]]>>\nPrivate-MAC: [[h40]]\n"])
    .fp(&["PuTTY-User-Key-File-2 files hold the key; see Private-Lines in the docs."]),
    rule(
        "jwt",
        "JSON Web Token",
        &["eyj"],
        r"\b(eyJ[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})",
    )
    .check(checks::jwt)
    .tp(&["token=<<eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIx[[u30]].[[u43]]>>"])
    .fp(&[
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIx[[u30]].[[u10]]",
        "eyJmb28iOiJiYXIifQ.eyJzdWIiOiIx[[u30]].[[u43]]",
    ]),
    rule(
        "age-secret-key",
        "age encryption secret key",
        &["age-secret-key-1"],
        r"\b(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b",
    )
    .sev(Critical)
    .tp(&["# secret: <<AGE-SECRET-KEY-1[[e58]]>>"])
    .fp(&["age-keygen prints AGE-SECRET-KEY-1 followed by the key"]),
    // ---- Connection strings ------------------------------------------------------------
    rule("postgres-url-password", "PostgreSQL URL with a password", &["postgres", "pgsql"], url_password!("postgres|postgresql|pgsql"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["DATABASE_URL=postgres://app:<<[[a16]]>>@db.internal:5432/app", "postgresql://admin:<<S3cr3t!pw>>@10.0.0.5/prod"])
        .fp(&["postgres://postgres:postgres@localhost:5432/db", "postgres://app:${DB_PASSWORD}@db/app", "postgres://localhost:5432/app"]),
    rule("mysql-url-password", "MySQL URL with a password", &["mysql", "mariadb"], url_password!("mysql|mysqlx|mariadb|mysql\\+pymysql"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["mysql://root:<<[[a12]]>>@127.0.0.1:3306/shop"])
        .fp(&["mysql://user:password@localhost/db"]),
    rule("mongodb-url-password", "MongoDB URL with a password", &["mongodb"], url_password!("mongodb|mongodb\\+srv"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["mongodb+srv://svc:<<[[a20]]>>@cluster0.ab1cd.mongodb.net/?retryWrites=true"])
        .fp(&["mongodb://<user>:<password>@host:27017"]),
    rule("redis-url-password", "Redis URL with a password", &["redis"], url_password!("redis|rediss"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["REDIS_URL=rediss://:<<[[a32]]>>@cache.example.net:6380/0"])
        .fp(&["redis://localhost:6379/0"]),
    rule("amqp-url-password", "AMQP URL with a password", &["amqp"], url_password!("amqp|amqps"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["amqps://worker:<<[[a24]]>>@mq.internal/vhost"])
        .fp(&["amqp://guest:guest@localhost:5672/"]),
    rule("sqlserver-url-password", "SQL Server URL with a password", &["sqlserver", "mssql"], url_password!("sqlserver|mssql"))
        .sev(Critical)
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["sqlserver://sa:<<[[a14]]!>>@mssql:1433?database=master"])
        .fp(&["sqlserver://sa:pass@localhost"]),
    rule("url-password", "URL with embedded credentials", &["://"], url_password!("[a-z][a-z0-9+.-]{1,20}"))
        .keyed()
        .group(2)
        .entropy(None)
        .check(checks::url_password)
        .tp(&["git clone https://deploy:<<[[a20]]>>@git.internal.example/repo.git", "ftp://backup:<<Pa55-[[a8]]>>@files.corp:21/"])
        .fp(&[
            "http://localhost:8080/path@v2",
            "https://user:pass@example.com",
            "ssh://git@github.com:22/org/repo",
            "cvs://:pserver:anoncvs@sources.example.org:/cvs/src",
        ]),
    rule(
        "connection-string-password",
        "Connection string with a password (ADO.NET/ODBC style)",
        &["password", "pwd"],
        r#"(?i)\b(?:server|data source|host|address|addr|hostname|dsn)\s*=[^;\r\n]+;(?:[^;\r\n]*;){0,10}?\s*(?:password|pwd)\s*=\s*([^;"'\s]+)"#,
    )
    .sev(Critical)
    .entropy(None)
    .check(checks::url_password)
    .tp(&["Server=tcp:sql.corp,1433;Database=app;User ID=app;Password=<<[[a16]]>>;Encrypt=true"])
    .fp(&["Server=localhost;Database=app;User ID=app;Password=${SQL_PASSWORD};"]),
    rule(
        "jdbc-url-password",
        "JDBC URL with a password",
        &["jdbc:"],
        r#"(?i)\bjdbc:[a-z0-9]+:[^\s"']{0,300}?[?&;:](?:password|pwd)=([^&;\s"']{1,128})"#,
    )
    .sev(Critical)
    .entropy(None)
    .check(checks::url_password)
    .tp(&["jdbc:mysql://db:3306/app?user=app&password=<<[[a18]]>>&useSSL=true"])
    .fp(&["jdbc:postgresql://db/app?user=app&password=$DB_PASS"]),
    // ---- AWS ---------------------------------------------------------------------------
    rule(
        "aws-access-key-id",
        "AWS access key ID",
        &["akia", "asia", "abia", "acca"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
    )
    .tp(&["aws_access_key_id = <<AKIA[[B16]]>>", r#""AccessKeyId": "<<ASIA[[B16]]>>""#])
    .fp(&["AKIAIOSFODNN7EXAMPLE", "AKIA[[B17]]", "akia[[B16]]"]),
    rule(
        "aws-secret-access-key",
        "AWS secret access key",
        &["aws", "secretaccess", "secret_access", "secret-access"],
        // Also `aws configure set aws_secret_access_key <key>`: a space may
        // stand for the operator, the value's shape is strict enough.
        r#"(?i)(?:aws[A-Za-z0-9_.-]{0,20}secret|secret[_.-]?access[_.-]?key)[A-Za-z0-9_.-]{0,30}["']?(?:\s{0,3}(?::=|=>|[:=])\s{0,3}|\s+)["'`]?((?-i:[A-Za-z0-9/+]{40}))(?:["'`\s;,&)\\]|$)"#,
    )
    .sev(Critical)
    .keyed()
    .entropy(Some(4.0))
    .tp(&[
        "aws_secret_access_key = <<[[b40]]>>",
        r#""SecretAccessKey": "<<[[b40]]>>""#,
        "aws configure set aws_secret_access_key <<[[b40]]>>",
    ])
    .fp(&["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [[b30]]"]),
    rule(
        "aws-session-token",
        "AWS session token",
        &["session_token", "sessiontoken", "session-token"],
        keyed!(r"aws[_.-]?session[_.-]?token|sessiontoken", "[A-Za-z0-9/+=]{100,2000}"),
    )
    .keyed()
    .entropy(Some(4.0))
    .tp(&["AWS_SESSION_TOKEN=<<IQoJb3JpZ2luX2Vj[[b200]]>>"])
    .fp(&["AWS_SESSION_TOKEN=[[b50]]"]),
    rule("aws-bedrock-api-key", "AWS Bedrock API key", &["absk"], r"\b(ABSK[A-Za-z0-9+/]{100,300}={0,2})")
        .tp(&["<<ABSK[[b120]]>>"])
        .fp(&["ABSK[[b40]]"]),
    // ---- Google Cloud ------------------------------------------------------------------
    rule("gcp-api-key", "Google API key", &["aiza"], r"\b(AIza[A-Za-z0-9_-]{35})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["https://maps.googleapis.com/api?key=<<AIza[[u35]]>>&q=1"])
        .fp(&["AIza[[u20]]", "AIza[[z35]]"]),
    rule("gcp-oauth-client-secret", "Google OAuth client secret", &["gocspx-"], r"\b(GOCSPX-[A-Za-z0-9_-]{28})(?:[^A-Za-z0-9_-]|$)")
        .tp(&[r#""client_secret":"<<GOCSPX-[[a28]]>>""#])
        .fp(&["GOCSPX-[[a10]]"]),
    rule("google-oauth-access-token", "Google OAuth access token", &["ya29."], r"\b(ya29\.[A-Za-z0-9_-]{30,2000})")
        .entropy(Some(3.5))
        .tp(&["Authorization: Bearer <<ya29.a0[[u120]]>>"])
        .fp(&["ya29.short"]),
    rule("google-oauth-refresh-token", "Google OAuth refresh token", &["1//0"], r"(?:^|[^A-Za-z0-9_/-])(1//0[A-Za-z0-9_-]{40,500})")
        .tp(&["refresh_token: <<1//0g[[u100]]>>"])
        .fp(&["see 1//0 in the docs"]),
    rule("gcp-fcm-server-key", "Firebase Cloud Messaging server key", &[":apa91b"], r"\b(AAAA[A-Za-z0-9_-]{7}:APA91b[A-Za-z0-9_-]{134})")
        .tp(&["key=<<AAAA[[a7]]:APA91b[[u134]]>>"])
        .fp(&["AAAA[[a7]]:APA91b[[u20]]"]),
    // ---- Azure -------------------------------------------------------------------------
    rule("azure-storage-account-key", "Azure storage account key", &["accountkey="], r"(?i)AccountKey=((?-i:[A-Za-z0-9+/]{86}==))")
        .sev(Critical)
        .tp(&["DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=<<[[b86]]==>>;EndpointSuffix=core.windows.net"])
        .fp(&["AccountKey=<storage-key>;"]),
    rule(
        "azure-sas-token",
        "Azure shared access signature",
        &["sig="],
        r"(?i)\b(?:sv|se|sp|sr|ss|srt|st|spr)=[^\s&]{1,40}&[A-Za-z0-9&=%:._-]{0,400}?[?&]sig=([A-Za-z0-9%+/]{40,120})",
    )
    .tp(&["https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00:00:00Z&spr=https&sig=<<[[a43]]%3D>>"])
    .fp(&["https://example.org/x?sig=[[a43]]", "sv=2022-11-02&sig=abc"]),
    rule(
        "azure-ad-client-secret",
        "Azure AD (Entra ID) client secret",
        &["q~"],
        r"(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)",
    )
    .tp(&["AZURE_CLIENT_SECRET=<<abc8Q~[[a34]]>>"])
    .fp(&["Q~[[a10]]", "abc8Q~[[a10]]"]),
    rule("azure-devops-pat", "Azure DevOps personal access token", &["azdo"], r"\b([A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4})\b")
        .tp(&["pat: <<[[a76]]AZDO[[a4]]>>"])
        .fp(&["[[a40]]AZDO[[a4]]"]),
    // ---- Other clouds and hosting --------------------------------------------------------
    rule("alibaba-access-key-id", "Alibaba Cloud AccessKey ID", &["ltai"], r"\b(LTAI[A-Za-z0-9]{20})\b")
        .tp(&["accessKeyId: <<LTAI[[a20]]>>"])
        .fp(&["LTAI[[a10]]"]),
    rule(
        "alibaba-access-key-secret",
        "Alibaba Cloud AccessKey secret",
        &["alibaba", "accesskeysecret", "access_key_secret"],
        keyed!(r"alibaba[A-Za-z0-9_.-]{0,20}secret|access[_.-]?key[_.-]?secret", "[A-Za-z0-9]{30}"),
    )
    .keyed()
    .tp(&["ALIBABA_CLOUD_ACCESS_KEY_SECRET=<<[[a30]]>>"])
    .fp(&["alibaba_secret=[[a12]]"]),
    rule("tencent-cloud-secret-id", "Tencent Cloud SecretId", &["akid"], r"\b(AKID[A-Za-z0-9]{32})\b")
        .tp(&["SecretId: <<AKID[[a32]]>>"])
        .fp(&["AKID[[a12]]"]),
    rule("digitalocean-pat", "DigitalOcean personal access token", &["dop_v1_"], r"\b(dop_v1_[a-f0-9]{64})\b")
        .tp(&["DO_TOKEN=<<dop_v1_[[h64]]>>"])
        .fp(&["dop_v1_[[h32]]"]),
    rule("digitalocean-oauth-token", "DigitalOcean OAuth token", &["doo_v1_"], r"\b(doo_v1_[a-f0-9]{64})\b")
        .tp(&["<<doo_v1_[[h64]]>>"])
        .fp(&["doo_v1_[[z64]]"]),
    rule("digitalocean-refresh-token", "DigitalOcean refresh token", &["dor_v1_"], r"\b(dor_v1_[a-f0-9]{64})\b")
        .tp(&["<<dor_v1_[[h64]]>>"])
        .fp(&["dor_v1_"]),
    rule("heroku-api-key", "Heroku API key", &["heroku"], keyed!("heroku", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"))
        .keyed()
        .tp(&["HEROKU_API_KEY=<<[[uuid]]>>"])
        .fp(&["heroku_app_id: not-a-uuid", "request_id=[[uuid]]"]),
    rule("heroku-api-key-v2", "Heroku API key", &["hrku-"], r"\b(HRKU-[A-Za-z0-9_-]{60})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<HRKU-AA[[u58]]>>"])
        .fp(&["HRKU-[[u20]]"]),
    rule("cloudflare-api-token", "Cloudflare API token", &["cloudflare", "cf_api"], keyed!("cloudflare|cf_api", "[A-Za-z0-9_-]{40}"))
        .keyed()
        .tp(&["CLOUDFLARE_API_TOKEN=<<[[a40]]>>"])
        .fp(&["cloudflare_zone=example.com"]),
    rule("cloudflare-global-api-key", "Cloudflare global API key", &["cloudflare"], keyed!("cloudflare", "[a-f0-9]{37}"))
        .keyed()
        .tp(&["cloudflare_global_key: <<[[h37]]>>"])
        .fp(&["cloudflare_key: [[h36]]"]),
    rule("cloudflare-origin-ca-key", "Cloudflare Origin CA key", &["v1.0-"], r"\b(v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b")
        .tp(&["<<v1.0-[[h24]]-[[h146]]>>"])
        .fp(&["release v1.0-[[h8]]"]),
    rule("fly-access-token", "Fly.io access token", &["fo1_"], r"\b(fo1_[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["FLY_API_TOKEN=<<fo1_[[u43]]>>"])
        .fp(&["fo1_[[u20]]"]),
    rule("netlify-pat", "Netlify personal access token", &["nfp_"], r"\b(nfp_[A-Za-z0-9]{36})\b")
        .tp(&["<<nfp_[[a36]]>>"])
        .fp(&["nfp_[[a10]]"]),
    rule("netlify-access-token", "Netlify access token", &["netlify"], keyed!("netlify", "[A-Za-z0-9_-]{40,46}"))
        .keyed()
        .tp(&["NETLIFY_AUTH_TOKEN=<<[[u43]]>>"])
        .fp(&["netlify_site=my-site"]),
    rule("vercel-token", "Vercel access token", &["vercel"], keyed!("vercel", "[A-Za-z0-9]{24}"))
        .keyed()
        .tp(&["VERCEL_TOKEN=<<[[a24]]>>"])
        .fp(&["vercel_project=[[a10]]"]),
    rule("render-api-key", "Render API key", &["rnd_"], r"\b(rnd_[A-Za-z0-9]{32})\b")
        .tp(&["<<rnd_[[a32]]>>"])
        .fp(&["rnd_[[a12]]"]),
    rule("linode-token", "Linode personal access token", &["linode"], keyed!("linode", "[a-f0-9]{64}"))
        .keyed()
        .tp(&["LINODE_TOKEN=<<[[h64]]>>"])
        .fp(&["linode_region=us-east"]),
    rule("ibm-cloud-api-key", "IBM Cloud API key", &["ibm"], keyed!("ibm[A-Za-z0-9_.-]{0,20}(?:api|key)", "[A-Za-z0-9_-]{44}"))
        .keyed()
        .tp(&["IBMCLOUD_API_KEY=<<[[a44]]>>"])
        .fp(&["ibm_api_version=2"]),
    // ---- Code hosting and CI ---------------------------------------------------------------
    rule("github-pat", "GitHub personal access token", &["ghp_"], r"\b(ghp_[A-Za-z0-9]{36})\b")
        .tp(&["GITHUB_TOKEN=<<ghp_[[a36]]>>", "git clone https://<<ghp_[[a36]]>>@github.com/o/r"])
        .fp(&["ghp_[[a20]]", "ghp_[[z36]]"]),
    rule("github-oauth-token", "GitHub OAuth access token", &["gho_"], r"\b(gho_[A-Za-z0-9]{36})\b")
        .tp(&["<<gho_[[a36]]>>"])
        .fp(&["gho_[[a35]]"]),
    rule("github-app-token", "GitHub App token", &["ghu_", "ghs_"], r"\b((?:ghu|ghs)_[A-Za-z0-9]{36})\b")
        .tp(&["<<ghs_[[a36]]>>", "<<ghu_[[a36]]>>"])
        .fp(&["ghs_[[a12]]"]),
    rule("github-refresh-token", "GitHub refresh token", &["ghr_"], r"\b(ghr_[A-Za-z0-9]{36,76})\b")
        .tp(&["<<ghr_[[a76]]>>"])
        .fp(&["ghr_[[a20]]"]),
    rule("github-fine-grained-pat", "GitHub fine-grained personal access token", &["github_pat_"], r"\b(github_pat_[A-Za-z0-9_]{82})\b")
        .tp(&["<<github_pat_11[[A20]]_[[a59]]>>"])
        .fp(&["github_pat_[[a20]]"]),
    rule(
        "gitlab-pat",
        "GitLab personal access token",
        &["glpat-"],
        r"\b(glpat-[A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[a-z0-9]{9})?)(?:[^A-Za-z0-9_-]|$)",
    )
    .tp(&["PRIVATE-TOKEN: <<glpat-[[a20]]>>", "<<glpat-[[u27]].01.[[l9]]>>."])
    .fp(&["glpat-[[a10]]", "glpat-[[z20]]"]),
    rule("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", &["glptt-"], r"\b(glptt-[a-f0-9]{40})\b")
        .tp(&["token=<<glptt-[[h40]]>>"])
        .fp(&["glptt-[[h20]]"]),
    rule("gitlab-runner-registration-token", "GitLab runner registration token", &["gr1348941"], r"\b(GR1348941[A-Za-z0-9_-]{20})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<GR1348941[[a20]]>>"])
        .fp(&["GR1348941[[a8]]"]),
    rule(
        "gitlab-runner-auth-token",
        "GitLab runner authentication token",
        &["glrt-"],
        r"\b(glrt-[A-Za-z0-9_-]{20,64}(?:\.[0-9a-z]{2}\.[a-z0-9]{9})?)(?:[^A-Za-z0-9_-]|$)",
    )
    .tp(&["<<glrt-[[a20]]>>"])
    .fp(&["glrt-[[a8]]"]),
    rule("gitlab-deploy-token", "GitLab deploy token", &["gldt-"], r"\b(gldt-[A-Za-z0-9_-]{20,64})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<gldt-[[a20]]>>"])
        .fp(&["gldt-[[a8]]"]),
    rule("gitlab-feed-token", "GitLab feed token", &["glft-"], r"\b(glft-[A-Za-z0-9_-]{20,64})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glft-[[a20]]>>"])
        .fp(&["glft-[[a8]]"]),
    rule("gitlab-oauth-app-secret", "GitLab OAuth application secret", &["gloas-"], r"\b(gloas-[A-Za-z0-9_-]{64})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<gloas-[[a64]]>>"])
        .fp(&["gloas-[[a8]]"]),
    rule("gitlab-scim-token", "GitLab SCIM token", &["glsoat-"], r"\b(glsoat-[A-Za-z0-9_-]{20,64})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glsoat-[[a20]]>>"])
        .fp(&["glsoat-[[a8]]"]),
    rule("gitlab-incoming-mail-token", "GitLab incoming mail token", &["glimt-"], r"\b(glimt-[A-Za-z0-9_-]{25})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glimt-[[l25]]>>"])
        .fp(&["glimt-[[l8]]"]),
    rule("gitlab-kubernetes-agent-token", "GitLab Kubernetes agent token", &["glagent-"], r"\b(glagent-[A-Za-z0-9_-]{50})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glagent-[[a50]]>>"])
        .fp(&["glagent-[[a8]]"]),
    rule("gitlab-cicd-job-token", "GitLab CI/CD job token", &["glcbt-"], r"\b(glcbt-[A-Za-z0-9]{1,5}_[A-Za-z0-9_-]{20})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glcbt-64_[[a20]]>>"])
        .fp(&["glcbt-64_[[a8]]"]),
    rule("gitlab-feature-flag-client-token", "GitLab feature flag client token", &["glffct-"], r"\b(glffct-[A-Za-z0-9_-]{20})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<glffct-[[a20]]>>"])
        .fp(&["glffct-[[a8]]"]),
    rule("atlassian-api-token", "Atlassian API token", &["atatt3"], r"\b(ATATT3[A-Za-z0-9_=-]{150,220})(?:[^A-Za-z0-9_=-]|$)")
        .tp(&["JIRA_API_TOKEN=<<ATATT3xFfGF0[[u180]]>>"])
        .fp(&["ATATT3[[u20]]"]),
    rule(
        "atlassian-api-token-legacy",
        "Atlassian API token (legacy)",
        &["atlassian", "confluence", "jira"],
        keyed!("atlassian|confluence|jira", "[A-Za-z0-9]{24}"),
    )
    .keyed()
    .tp(&["JIRA_API_TOKEN=<<[[a24]]>>"])
    .fp(&["jira_project=PLAT", "jira_url: https://corp.atlassian.net"]),
    rule("bitbucket-app-password", "Bitbucket app password", &["atbb"], r"\b(ATBB[A-Za-z0-9_=.-]{28,40})(?:[^A-Za-z0-9_=.-]|$)")
        .tp(&["<<ATBB[[a32]]>>"])
        .fp(&["ATBB[[a10]]"]),
    rule(
        "bitbucket-client-secret",
        "Bitbucket OAuth client secret",
        &["bitbucket"],
        keyed!("bitbucket[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9=_-]{64}"),
    )
    .keyed()
    .tp(&["BITBUCKET_CLIENT_SECRET=<<[[a64]]>>"])
    .fp(&["bitbucket_secret_name=deploy"]),
    rule("circleci-pat", "CircleCI personal API token", &["ccipat_"], r"\b(CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40})\b")
        .tp(&["<<CCIPAT_[[a22]]_[[h40]]>>"])
        .fp(&["CCIPAT_[[a10]]"]),
    rule("buildkite-api-token", "Buildkite API token", &["bkua_"], r"\b(bkua_[a-f0-9]{40})\b")
        .tp(&["<<bkua_[[h40]]>>"])
        .fp(&["bkua_[[h10]]"]),
    rule("sonarqube-token", "SonarQube token", &["sqp_", "squ_", "sqa_"], r"\b(sq[pua]_[a-f0-9]{40})\b")
        .tp(&["SONAR_TOKEN=<<sqp_[[h40]]>>"])
        .fp(&["sqp_[[h12]]"]),
    rule("sourcegraph-access-token", "Sourcegraph access token", &["sgp_"], r"\b(sgp_(?:[a-f0-9]{16}_|local_)?[a-f0-9]{40})\b")
        .tp(&["<<sgp_[[h16]]_[[h40]]>>"])
        .fp(&["sgp_[[h12]]"]),
    rule("octopus-deploy-api-key", "Octopus Deploy API key", &["api-"], r"\b(API-[A-Z0-9]{26})\b")
        .tp(&["X-Octopus-ApiKey: <<API-[[A26]]>>"])
        .fp(&["API-[[A10]]", "see API-REFERENCE"]),
    rule("harness-pat", "Harness access token", &["pat.", "sat."], r"\b((?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20})\b")
        .tp(&["<<pat.[[a22]].[[h24]].[[a20]]>>"])
        .fp(&["compat.[[a22]]"]),
    rule("snyk-api-token", "Snyk API token", &["snyk"], keyed!("snyk", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"))
        .keyed()
        .tp(&["SNYK_TOKEN=<<[[uuid]]>>"])
        .fp(&["snyk_org=platform"]),
    // ---- Package registries and infrastructure tooling --------------------------------------
    rule("npm-access-token", "npm access token", &["npm_"], r"\b(npm_[A-Za-z0-9]{36})\b")
        .tp(&["//registry.npmjs.org/:_authToken=<<npm_[[a36]]>>"])
        .fp(&["npm_config_cache", "npm_[[a20]]"]),
    rule("npmrc-auth-token", "npm registry auth token in .npmrc", &[":_authtoken"], keyed!(":_authtoken", "[A-Za-z0-9._~+/=-]{20,200}"))
        .keyed()
        .entropy(Some(3.5))
        .check(checks::opaque_token)
        .tp(&["//npm.corp.example/:_authToken=<<[[uuid]]>>"])
        .fp(&["//registry.npmjs.org/:_authToken=${NPM_TOKEN}"]),
    rule("pypi-upload-token", "PyPI upload token", &["pypi-ageichlwas5vcmc"], r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,})")
        .tp(&["password = <<pypi-AgEIcHlwaS5vcmc[[u70]]>>"])
        .fp(&["pypi-AgEIcHlwaS5vcmc"]),
    rule("rubygems-api-token", "RubyGems API token", &["rubygems_"], r"\b(rubygems_[a-f0-9]{48})\b")
        .tp(&["<<rubygems_[[h48]]>>"])
        .fp(&["rubygems_[[h12]]"]),
    rule("nuget-api-key", "NuGet API key", &["oy2"], r"\b(oy2[a-z0-9]{43})\b")
        .tp(&["dotnet nuget push -k <<oy2[[l43]]>>"])
        .fp(&["oy2[[l10]]"]),
    rule("docker-hub-token", "Docker Hub access token", &["dckr_pat_", "dckr_oat_"], r"\b(dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,})")
        .tp(&["<<dckr_pat_[[a27]]>>"])
        .fp(&["dckr_pat_[[a8]]"]),
    rule("crates-io-api-token", "crates.io API token", &["cio"], r"\b(cio[A-Za-z0-9]{32})\b")
        .tp(&["CARGO_REGISTRY_TOKEN=<<cio[[a32]]>>"])
        .fp(&["delicious", "cio[[a12]]"]),
    rule("clojars-api-token", "Clojars deploy token", &["clojars_"], r"\b(CLOJARS_[a-z0-9]{60})\b")
        .tp(&["<<CLOJARS_[[l60]]>>"])
        .fp(&["CLOJARS_[[l10]]"]),
    rule("artifactory-api-key", "JFrog Artifactory API key", &["akcp"], r"\b(AKCp[A-Za-z0-9]{69})\b")
        .tp(&["<<AKCp[[a69]]>>"])
        .fp(&["AKCp[[a20]]"]),
    rule("artifactory-reference-token", "JFrog Artifactory reference token", &["cmvmdgtuojaxoj"], r"\b(cmVmdGtuOjAxOj[A-Za-z0-9]{50,})")
        .tp(&["<<cmVmdGtuOjAxOj[[a50]]>>"])
        .fp(&["cmVmdGtuOjAxOj[[a10]]"]),
    rule("pulumi-access-token", "Pulumi access token", &["pul-"], r"\b(pul-[a-f0-9]{40})\b")
        .tp(&["PULUMI_ACCESS_TOKEN=<<pul-[[h40]]>>"])
        .fp(&["pul-[[h10]]"]),
    rule("terraform-cloud-token", "Terraform Cloud API token", &[".atlasv1."], r"\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70})")
        .tp(&["token = \"<<[[a14]].atlasv1.[[a67]]>>\""])
        .fp(&["x.atlasv1.y"]),
    rule("vault-service-token", "HashiCorp Vault service token", &["hvs."], r"\b(hvs\.[A-Za-z0-9_-]{90,120})")
        .sev(Critical)
        .tp(&["VAULT_TOKEN=<<hvs.CAESI[[u90]]>>"])
        .fp(&["hvs.[[a24]]"]),
    rule("vault-batch-token", "HashiCorp Vault batch token", &["hvb."], r"\b(hvb\.[A-Za-z0-9_-]{138,300})")
        .sev(Critical)
        .tp(&["<<hvb.AAAAAQ[[u150]]>>"])
        .fp(&["hvb.[[a24]]"]),
    rule("vault-legacy-token", "HashiCorp Vault token (legacy)", &["vault"], keyed!("vault[A-Za-z0-9_.-]{0,20}token", r"s\.[A-Za-z0-9]{24}"))
        .keyed()
        .sev(Critical)
        .tp(&["VAULT_TOKEN=<<s.[[a24]]>>"])
        .fp(&["vault_token_ttl=24h"]),
    rule(
        "doppler-token",
        "Doppler token",
        &["dp.pt.", "dp.st.", "dp.ct.", "dp.sa.", "dp.scim.", "dp.audit."],
        r"\b(dp\.(?:pt|st|ct|sa|scim|audit)\.(?:[a-z0-9_-]{1,30}\.)?[A-Za-z0-9_-]{40,44})(?:[^A-Za-z0-9_-]|$)",
    )
    .tp(&["DOPPLER_TOKEN=<<dp.st.prd.[[a40]]>>", "<<dp.pt.[[a43]]>>"])
    .fp(&["dp.pt.[[a10]]"]),
    rule("onepassword-service-account-token", "1Password service account token", &["ops_eyj"], r"\b(ops_eyJ[A-Za-z0-9+/]{250,}={0,3})")
        .sev(Critical)
        .tp(&["OP_SERVICE_ACCOUNT_TOKEN=<<ops_eyJ[[a260]]>>"])
        .fp(&["ops_eyJ[[a20]]"]),
    rule(
        "onepassword-secret-key",
        "1Password account secret key",
        &["a3-"],
        r"\b(A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b",
    )
    .sev(Critical)
    .tp(&["<<A3-[[A6]]-[[A6]]-[[A5]]-[[A5]]-[[A5]]-[[A5]]>>"])
    .fp(&["A3-[[A6]]", "paper size A3-landscape"]),
    rule("openshift-user-token", "OpenShift user token", &["sha256~"], r"\b(sha256~[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["oc login --token=<<sha256~[[u43]]>>"])
        .fp(&["sha256~[[u10]]"]),
    rule("tailscale-key", "Tailscale key", &["tskey-"], r"\b(tskey-[a-z]+-[A-Za-z0-9]{8,20}-[A-Za-z0-9]{20,40})\b")
        .tp(&["TS_AUTHKEY=<<tskey-auth-k[[a10]]CNTRL-[[a30]]>>"])
        .fp(&["tskey-auth-[[a5]]"]),
    rule("defined-networking-api-token", "Defined Networking API token", &["dnkey-"], r"\b(dnkey-[a-z0-9=_-]{26}-[a-z0-9=_-]{52})")
        .tp(&["<<dnkey-[[l26]]-[[l52]]>>"])
        .fp(&["dnkey-[[l10]]"]),
    rule("scalingo-api-token", "Scalingo API token", &["tk-us-"], r"\b(tk-us-[A-Za-z0-9_-]{48})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<tk-us-[[u48]]>>"])
        .fp(&["tk-us-[[u10]]"]),
    rule("infracost-api-token", "Infracost API token", &["ico-"], r"\b(ico-[A-Za-z0-9]{32})\b")
        .tp(&["INFRACOST_API_KEY=<<ico-[[a32]]>>"])
        .fp(&["ico-[[a10]]"]),
    rule("prefect-api-token", "Prefect API token", &["pnu_"], r"\b(pnu_[A-Za-z0-9]{36})\b")
        .tp(&["<<pnu_[[a36]]>>"])
        .fp(&["pnu_[[a10]]"]),
    rule("databricks-token", "Databricks access token", &["dapi"], r"\b(dapi[a-f0-9]{32}(?:-\d)?)\b")
        .tp(&["DATABRICKS_TOKEN=<<dapi[[h32]]>>"])
        .fp(&["dapi[[h10]]", "dapi_version=2"]),
    rule("planetscale-api-token", "PlanetScale API token", &["pscale_tkn_", "pscale_oauth_"], r"\b(pscale_(?:tkn|oauth)_[A-Za-z0-9_.=-]{32,64})")
        .tp(&["<<pscale_tkn_[[a43]]>>"])
        .fp(&["pscale_tkn_[[a10]]"]),
    rule("planetscale-password", "PlanetScale database password", &["pscale_pw_"], r"\b(pscale_pw_[A-Za-z0-9_.=-]{32,64})")
        .sev(Critical)
        .tp(&["<<pscale_pw_[[a43]]>>"])
        .fp(&["pscale_pw_[[a10]]"]),
    rule("supabase-access-token", "Supabase access token", &["sbp_"], r"\b(sbp_[a-f0-9]{40})\b")
        .tp(&["<<sbp_[[h40]]>>"])
        .fp(&["sbp_[[h10]]"]),
    rule("supabase-secret-key", "Supabase secret API key", &["sb_secret_"], r"\b(sb_secret_[A-Za-z0-9_-]{31,})")
        .tp(&["<<sb_secret_[[a31]]>>"])
        .fp(&["sb_secret_[[a10]]"]),
    rule("settlemint-token", "SettleMint access token", &["sm_aat_", "sm_pat_", "sm_sat_"], r"\b(sm_(?:aat|pat|sat)_[A-Za-z0-9]{16})\b")
        .tp(&["<<sm_pat_[[a16]]>>"])
        .fp(&["sm_pat_[[a8]]"]),
    rule(
        "sidekiq-secret",
        "Sidekiq Pro/Enterprise gem server credentials",
        &["contribsys"],
        r#"(?i)\bBUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM\s{0,3}[:=]\s{0,3}["']?((?-i:[a-f0-9]{8}:[a-f0-9]{8}))\b"#,
    )
    .tp(&["BUNDLE_ENTERPRISE__CONTRIBSYS__COM=<<[[h8]]:[[h8]]>>"])
    .fp(&["BUNDLE_ENTERPRISE__CONTRIBSYS__COM=${SIDEKIQ_CREDS}"]),
    rule("maxmind-license-key", "MaxMind license key", &["_mmk"], r"\b([A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk)\b")
        .tp(&["GEOIP_LICENSE=<<[[a6]]_[[a29]]_mmk>>"])
        .fp(&["[[a6]]_[[a10]]_mmk"]),
    rule("clickhouse-cloud-secret-key", "ClickHouse Cloud API secret key", &["4b1d"], r"\b(4b1d[A-Za-z0-9]{38})\b")
        .tp(&["<<4b1d[[a38]]>>"])
        .fp(&["4b1d[[a12]]"]),
    rule("fastly-api-token", "Fastly API token", &["fastly"], keyed!("fastly", "[A-Za-z0-9_-]{32}"))
        .keyed()
        .tp(&["FASTLY_API_TOKEN=<<[[a32]]>>"])
        .fp(&["fastly_service=www"]),
    rule(
        "launchdarkly-access-token",
        "LaunchDarkly access token",
        &["launchdarkly", "launch_darkly"],
        keyed!("launch_?darkly", "(?:api|sdk)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    )
    .keyed()
    .tp(&["LAUNCHDARKLY_ACCESS_TOKEN=<<api-[[uuid]]>>"])
    .fp(&["launchdarkly_project=default"]),
    rule("travisci-access-token", "Travis CI access token", &["travis"], keyed!("travis", "[A-Za-z0-9_-]{22}"))
        .keyed()
        .tp(&["TRAVIS_API_TOKEN=<<[[a22]]>>"])
        .fp(&["travis_branch=main"]),
    rule("codecov-access-token", "Codecov access token", &["codecov"], keyed!("codecov", "[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}|[a-f0-9]{32}"))
        .keyed()
        .tp(&["CODECOV_TOKEN=<<[[uuid]]>>"])
        .fp(&["codecov_flags=unit"]),
    rule("mattermost-access-token", "Mattermost access token", &["mattermost"], keyed!("mattermost", "[a-z0-9]{26}"))
        .keyed()
        .tp(&["MATTERMOST_TOKEN=<<[[l26]]>>"])
        .fp(&["mattermost_team=eng"]),
    // ---- Observability -----------------------------------------------------------------------
    rule(
        "datadog-api-key",
        "Datadog API key",
        &["datadog", "dd_api", "dd-api", "ddapi"],
        keyed!("(?:datadog|dd)[_.-]?api[_.-]?key", "[a-f0-9]{32}"),
    )
    .keyed()
    .tp(&["DD_API_KEY=<<[[h32]]>>"])
    .fp(&["DD_API_KEY=[[h16]]"]),
    rule(
        "datadog-app-key",
        "Datadog application key",
        &["datadog", "dd_app", "dd-app", "ddapp"],
        keyed!("(?:datadog|dd)[_.-]?app(?:lication)?[_.-]?key", "[a-f0-9]{40}"),
    )
    .keyed()
    .tp(&["DD_APP_KEY=<<[[h40]]>>"])
    .fp(&["DD_APP_KEY=[[h32]]"]),
    rule("new-relic-user-api-key", "New Relic user API key", &["nrak-"], r"\b(NRAK-[A-Z0-9]{27})\b")
        .tp(&["<<NRAK-[[A27]]>>"])
        .fp(&["NRAK-[[A10]]"]),
    rule("new-relic-insert-key", "New Relic insert key", &["nrii-"], r"\b(NRII-[A-Za-z0-9_-]{32})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<NRII-[[u32]]>>"])
        .fp(&["NRII-[[u10]]"]),
    rule("new-relic-license-key", "New Relic license key", &["nral"], r"\b([a-f0-9]{36}NRAL)\b")
        .tp(&["NEW_RELIC_LICENSE_KEY=<<[[h36]]NRAL>>"])
        .fp(&["[[h20]]NRAL"]),
    rule("sentry-org-token", "Sentry organization auth token", &["sntrys_"], r"\b(sntrys_eyJ[A-Za-z0-9+/=_-]{80,})")
        .tp(&["SENTRY_AUTH_TOKEN=<<sntrys_eyJ[[a100]]>>"])
        .fp(&["sntrys_eyJ[[a10]]"]),
    rule("sentry-user-token", "Sentry user auth token", &["sntryu_"], r"\b(sntryu_[a-f0-9]{64})\b")
        .tp(&["<<sntryu_[[h64]]>>"])
        .fp(&["sntryu_[[h10]]"]),
    rule("grafana-cloud-token", "Grafana Cloud access token", &["glc_"], r"\b(glc_[A-Za-z0-9+/]{32,400}={0,2})")
        .tp(&["<<glc_eyJ[[a80]]>>"])
        .fp(&["glc_[[a10]]"]),
    rule("grafana-service-account-token", "Grafana service account token", &["glsa_"], r"\b(glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})\b")
        .tp(&["<<glsa_[[a32]]_[[h8]]>>"])
        .fp(&["glsa_[[a10]]"]),
    rule("grafana-api-key", "Grafana API key", &["eyjrijoi"], r"\b(eyJrIjoi[A-Za-z0-9]{70,400}={0,2})")
        .tp(&["<<eyJrIjoi[[a80]]>>"])
        .fp(&["eyJrIjoi[[a10]]"]),
    rule("dynatrace-api-token", "Dynatrace API token", &["dt0c01."], r"\b(dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64})\b")
        .tp(&["<<dt0c01.[[A24]].[[A64]]>>"])
        .fp(&["dt0c01.[[A10]]"]),
    rule("rollbar-access-token", "Rollbar access token", &["rollbar"], keyed!("rollbar", "[a-f0-9]{32}"))
        .keyed()
        .tp(&["ROLLBAR_ACCESS_TOKEN=<<[[h32]]>>"])
        .fp(&["rollbar_env=production"]),
    rule("postman-api-key", "Postman API key", &["pmak-"], r"\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b")
        .tp(&["<<PMAK-[[h24]]-[[h34]]>>"])
        .fp(&["PMAK-[[h10]]"]),
    // ---- Messaging ---------------------------------------------------------------------------
    rule("slack-bot-token", "Slack bot token", &["xoxb-"], r"\b(xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34})\b")
        .tp(&["SLACK_BOT_TOKEN=<<xoxb-[[d12]]-[[d13]]-[[a24]]>>"])
        .fp(&["xoxb-[[d5]]"]),
    rule(
        "slack-user-token",
        "Slack user token",
        &["xoxp-", "xoxe-"],
        r"\b(xox[pe]-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32,64})\b",
    )
    .tp(&["<<xoxp-[[d12]]-[[d12]]-[[d13]]-[[h32]]>>"])
    .fp(&["xoxp-[[d5]]-[[d5]]"]),
    rule("slack-app-token", "Slack app-level token", &["xapp-"], r"\b(xapp-\d-[A-Z0-9]{9,12}-\d{10,14}-[a-f0-9]{64})\b")
        .tp(&["<<xapp-1-A[[A10]]-[[d13]]-[[h64]]>>"])
        .fp(&["xapp-1-[[A5]]"]),
    rule("slack-config-access-token", "Slack configuration access token", &["xoxe.xox"], r"\b(xoxe\.xox[bp]-\d-[A-Z0-9]{160,170})\b")
        .tp(&["<<xoxe.xoxp-1-[[A165]]>>"])
        .fp(&["xoxe.xoxp-1-[[A20]]"]),
    rule("slack-config-refresh-token", "Slack configuration refresh token", &["xoxe-"], r"\b(xoxe-\d-[A-Z0-9]{140,150})\b")
        .tp(&["<<xoxe-1-[[A146]]>>"])
        .fp(&["xoxe-1-[[A20]]"]),
    rule(
        "slack-legacy-token",
        "Slack legacy token",
        &["xoxa-", "xoxo-", "xoxr-", "xoxs-"],
        r"\b(xox[aors]-(?:\d+-)+[A-Za-z0-9]{10,64})\b",
    )
    .tp(&["<<xoxs-[[d10]]-[[d12]]-[[a40]]>>"])
    .fp(&["xoxs-[[d10]]"]),
    rule(
        "slack-webhook-url",
        "Slack incoming webhook URL",
        &["hooks.slack.com"],
        r"(https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_-]{40,100})",
    )
    .tp(&["<<https://hooks.slack.com/services/T[[A8]]/B[[A10]]/[[a24]]>>"])
    .fp(&["https://hooks.slack.com/services/"]),
    rule(
        "discord-bot-token",
        "Discord bot token",
        &["discord"],
        r#"(?i)discord[A-Za-z0-9_.:="' -]{0,40}?\b((?-i:[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}))(?:[^A-Za-z0-9_-]|$)"#,
    )
    .keyed()
    .tp(&["DISCORD_BOT_TOKEN=<<M[[a25]].[[u6]].[[a38]]>>"])
    .fp(&["discord invite code [[a8]]"]),
    rule(
        "discord-webhook-url",
        "Discord webhook URL",
        &["discord.com/api/webhooks", "discordapp.com/api/webhooks"],
        r"(https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{17,20}/[A-Za-z0-9_-]{60,68})",
    )
    .tp(&["<<https://discord.com/api/webhooks/[[d18]]/[[a68]]>>"])
    .fp(&["https://discord.com/api/webhooks/{id}/{token}"]),
    rule("discord-client-secret", "Discord client secret", &["discord"], keyed!("discord[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9_-]{32}"))
        .keyed()
        .tp(&["DISCORD_CLIENT_SECRET=<<[[a32]]>>"])
        .fp(&["discord_secret_name=bot"]),
    rule(
        "telegram-bot-token",
        "Telegram bot token",
        &[":aa"],
        r"(?:^|[^0-9A-Za-z]|bot)(\d{8,10}:AA[A-Za-z0-9_-]{33})(?:[^A-Za-z0-9_-]|$)",
    )
    .tp(&["https://api.telegram.org/bot<<[[d10]]:AA[[a33]]>>/getMe", "TELEGRAM_TOKEN=<<[[d9]]:AA[[a33]]>>"])
    .fp(&["12:AAbc", "[[d9]]:AA[[a10]]"]),
    rule(
        "microsoft-teams-webhook",
        "Microsoft Teams incoming webhook URL",
        &["webhook.office.com"],
        r"(https://[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/[a-f0-9-]{36}@[a-f0-9-]{36}/IncomingWebhook/[A-Za-z0-9]{32}/[a-f0-9-]{36}(?:/[A-Za-z0-9_-]{40,})?)",
    )
    .tp(&["<<https://corp.webhook.office.com/webhookb2/[[uuid]]@[[uuid]]/IncomingWebhook/[[a32]]/[[uuid]]>>"])
    .fp(&["https://corp.webhook.office.com/webhookb2/"]),
    rule("twilio-api-key", "Twilio API key", &["sk"], r"\b(SK[0-9a-fA-F]{32})\b")
        .tp(&["TWILIO_API_KEY=<<SK[[h32]]>>"])
        .fp(&["SK[[h10]]", "task[[h32]]"]),
    rule("twilio-auth-token", "Twilio auth token", &["twilio"], keyed!("twilio[A-Za-z0-9_.-]{0,12}(?:auth|token|secret)", "[a-f0-9]{32}"))
        .keyed()
        .tp(&["TWILIO_AUTH_TOKEN=<<[[h32]]>>"])
        .fp(&["TWILIO_ACCOUNT_SID=AC[[h32]]"]),
    rule("sendgrid-api-key", "SendGrid API key", &["sg."], r"\b(SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["SENDGRID_API_KEY=<<SG.[[a22]].[[a43]]>>"])
        .fp(&["SG.[[a10]]"]),
    rule("mailgun-api-key", "Mailgun API key", &["key-"], r"\b(key-[a-f0-9]{32})\b")
        .tp(&["api:<<key-[[h32]]>>"])
        .fp(&["key-[[h16]]", "key-value store"]),
    rule(
        "mailgun-private-key",
        "Mailgun private API key",
        &["mailgun"],
        keyed!("mailgun", "[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}"),
    )
    .keyed()
    .tp(&["MAILGUN_API_KEY=<<[[h32]]-[[h8]]-[[h8]]>>"])
    .fp(&["mailgun_domain=mg.example.org"]),
    rule("mailchimp-api-key", "Mailchimp API key", &["-us"], r"\b([a-f0-9]{32}-us[0-9]{1,2})\b")
        .tp(&["MAILCHIMP_KEY=<<[[h32]]-us21>>"])
        .fp(&["en-us", "[[h16]]-us21"]),
    rule("brevo-api-key", "Brevo (Sendinblue) API key", &["xkeysib-", "xsmtpsib-"], r"\b(x(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16})\b")
        .tp(&["<<xkeysib-[[h64]]-[[a16]]>>"])
        .fp(&["xkeysib-[[h10]]"]),
    rule("postmark-server-token", "Postmark server token", &["postmark"], keyed!("postmark", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"))
        .keyed()
        .tp(&["POSTMARK_SERVER_TOKEN=<<[[uuid]]>>"])
        .fp(&["postmark_stream=outbound"]),
    rule(
        "vonage-api-secret",
        "Vonage (Nexmo) API secret",
        &["vonage", "nexmo"],
        keyed!("(?:vonage|nexmo)[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9]{16}"),
    )
    .keyed()
    .tp(&["VONAGE_API_SECRET=<<[[a16]]>>"])
    .fp(&["vonage_secret=short"]),
    // ---- Payments and commerce ---------------------------------------------------------------
    rule("stripe-secret-key", "Stripe live secret key", &["sk_live_"], r"\b(sk_live_[A-Za-z0-9]{24,247})\b")
        .sev(Critical)
        .tp(&["Stripe.api_key = '<<sk_live_[[a24]]>>'", "<<sk_live_51[[a97]]>>"])
        .fp(&["sk_live_[[a10]]", "sk_live_[[z24]]"]),
    rule("stripe-test-secret-key", "Stripe test-mode secret key", &["sk_test_"], r"\b(sk_test_[A-Za-z0-9]{24,247})\b")
        .sev(Medium)
        .tp(&["<<sk_test_[[a24]]>>"])
        .fp(&["sk_test_[[a10]]"]),
    rule("stripe-restricted-key", "Stripe restricted key", &["rk_live_", "rk_test_"], r"\b(rk_(?:live|test)_[A-Za-z0-9]{24,247})\b")
        .tp(&["<<rk_live_[[a24]]>>"])
        .fp(&["rk_live_[[a10]]"]),
    rule("stripe-webhook-secret", "Stripe webhook signing secret", &["whsec_"], r"\b(whsec_[A-Za-z0-9+/=]{32,})")
        .tp(&["STRIPE_WEBHOOK_SECRET=<<whsec_[[a32]]>>"])
        .fp(&["whsec_[[a10]]"]),
    rule("square-access-token", "Square access token", &["eaaa"], r"\b(EAAA[A-Za-z0-9_-]{60})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<EAAA[[u60]]>>"])
        .fp(&["EAAA[[u20]]"]),
    rule("square-oauth-secret", "Square OAuth secret", &["sq0csp-"], r"\b(sq0csp-[A-Za-z0-9_-]{43})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<sq0csp-[[u43]]>>"])
        .fp(&["sq0csp-[[u10]]"]),
    rule("square-access-token-legacy", "Square access token (legacy)", &["sq0atp-"], r"\b(sq0atp-[A-Za-z0-9_-]{22})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<sq0atp-[[u22]]>>"])
        .fp(&["sq0atp-[[u10]]"]),
    rule(
        "braintree-access-token",
        "Braintree (PayPal) access token",
        &["access_token$production$"],
        r"\b(access_token\$production\$[a-z0-9]{16}\$[a-f0-9]{32})\b",
    )
    .sev(Critical)
    .tp(&["<<access_token$production$[[l16]]$[[h32]]>>"])
    .fp(&["access_token$production$"]),
    rule("paypal-client-secret", "PayPal client secret", &["paypal"], keyed!("paypal[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9_-]{80}"))
        .keyed()
        .tp(&["PAYPAL_CLIENT_SECRET=<<[[u80]]>>"])
        .fp(&["paypal_secret_ref=vault:paypal"]),
    rule("shopify-access-token", "Shopify access token", &["shpat_"], r"\b(shpat_[a-fA-F0-9]{32})\b")
        .tp(&["X-Shopify-Access-Token: <<shpat_[[h32]]>>"])
        .fp(&["shpat_[[h10]]"]),
    rule("shopify-custom-app-token", "Shopify custom app access token", &["shpca_"], r"\b(shpca_[a-fA-F0-9]{32})\b")
        .tp(&["<<shpca_[[h32]]>>"])
        .fp(&["shpca_[[h10]]"]),
    rule("shopify-private-app-token", "Shopify private app access token", &["shppa_"], r"\b(shppa_[a-fA-F0-9]{32})\b")
        .tp(&["<<shppa_[[h32]]>>"])
        .fp(&["shppa_[[h10]]"]),
    rule("shopify-shared-secret", "Shopify shared secret", &["shpss_"], r"\b(shpss_[a-fA-F0-9]{32})\b")
        .tp(&["<<shpss_[[h32]]>>"])
        .fp(&["shpss_[[h10]]"]),
    rule("flutterwave-secret-key", "Flutterwave secret key", &["flwseck"], r"\b(FLWSECK(?:_TEST)?-[a-h0-9]{32}-X)(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<FLWSECK_TEST-[[h32]]-X>>"])
        .fp(&["FLWSECK-[[h10]]-X"]),
    rule(
        "plaid-access-token",
        "Plaid access token",
        &["access-sandbox-", "access-development-", "access-production-"],
        r"\b(access-(?:sandbox|development|production)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b",
    )
    .tp(&["<<access-production-[[uuid]]>>"])
    .fp(&["access-production-environment"]),
    rule("plaid-secret", "Plaid secret", &["plaid"], keyed!("plaid[A-Za-z0-9_.-]{0,20}secret", "[a-f0-9]{30}"))
        .keyed()
        .tp(&["PLAID_SECRET=<<[[h30]]>>"])
        .fp(&["plaid_env=sandbox"]),
    rule("razorpay-key-secret", "Razorpay key secret", &["razorpay"], keyed!("razorpay[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9]{24}"))
        .keyed()
        .tp(&["RAZORPAY_KEY_SECRET=<<[[a24]]>>"])
        .fp(&["razorpay_secret=[[a10]]"]),
    rule("gocardless-access-token", "GoCardless access token", &["gocardless"], keyed!("gocardless", "live_[A-Za-z0-9_=-]{40}"))
        .keyed()
        .tp(&["GOCARDLESS_ACCESS_TOKEN=<<live_[[u40]]>>"])
        .fp(&["gocardless_env=live"]),
    rule("shippo-api-token", "Shippo API token", &["shippo_"], r"\b(shippo_(?:live|test)_[a-f0-9]{40})\b")
        .tp(&["<<shippo_live_[[h40]]>>"])
        .fp(&["shippo_live_[[h10]]"]),
    rule("easypost-api-key", "EasyPost API key", &["ezak", "eztk"], r"\b(EZ[AT]K[A-Za-z0-9]{54})\b")
        .tp(&["<<EZAK[[a54]]>>"])
        .fp(&["EZAK[[a10]]"]),
    rule("duffel-api-token", "Duffel API token", &["duffel_"], r"\b(duffel_(?:test|live)_[A-Za-z0-9_=-]{43})(?:[^A-Za-z0-9_=-]|$)")
        .tp(&["<<duffel_live_[[u43]]>>"])
        .fp(&["duffel_live_[[u10]]"]),
    // ---- AI providers ------------------------------------------------------------------------
    rule(
        "openai-api-key",
        "OpenAI API key",
        &["t3blbkfj", "sk-proj-", "sk-svcacct-", "sk-admin-"],
        r"\b(sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}))(?:[^A-Za-z0-9_-]|$)",
    )
    .tp(&["OPENAI_API_KEY=<<sk-proj-[[u74]]T3BlbkFJ[[u74]]>>", "<<sk-[[a20]]T3BlbkFJ[[a20]]>>"])
    .fp(&["sk-proj-[[a10]]", "sk-[[a20]]"]),
    rule("anthropic-api-key", "Anthropic API key", &["sk-ant-api"], r"\b(sk-ant-api0\d-[A-Za-z0-9_-]{80,120})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["ANTHROPIC_API_KEY=<<sk-ant-api03-[[u93]]AA>>"])
        .fp(&["sk-ant-api03-[[u20]]"]),
    rule("anthropic-admin-key", "Anthropic admin key", &["sk-ant-admin"], r"\b(sk-ant-admin0\d-[A-Za-z0-9_-]{80,120})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<sk-ant-admin01-[[u93]]AA>>"])
        .fp(&["sk-ant-admin01-[[u20]]"]),
    rule("huggingface-access-token", "Hugging Face access token", &["hf_"], r"\b(hf_[A-Za-z]{34})\b")
        .tp(&["HF_TOKEN=<<hf_[[x34]]>>"])
        .fp(&["hf_[[x10]]", "hf_hub_download"]),
    rule("huggingface-org-token", "Hugging Face organization token", &["api_org_"], r"\b(api_org_[A-Za-z]{34})\b")
        .tp(&["<<api_org_[[x34]]>>"])
        .fp(&["api_org_[[x10]]"]),
    rule("groq-api-key", "Groq API key", &["gsk_"], r"\b(gsk_[A-Za-z0-9]{52})\b")
        .tp(&["GROQ_API_KEY=<<gsk_[[a52]]>>"])
        .fp(&["gsk_[[a20]]"]),
    rule("replicate-api-token", "Replicate API token", &["r8_"], r"\b(r8_[A-Za-z0-9]{37})\b")
        .tp(&["REPLICATE_API_TOKEN=<<r8_[[a37]]>>"])
        .fp(&["r8_[[a10]]"]),
    rule("perplexity-api-key", "Perplexity API key", &["pplx-"], r"\b(pplx-[A-Za-z0-9]{48})\b")
        .tp(&["<<pplx-[[a48]]>>"])
        .fp(&["pplx-[[a10]]"]),
    rule("xai-api-key", "xAI API key", &["xai-"], r"\b(xai-[A-Za-z0-9]{80})\b")
        .tp(&["XAI_API_KEY=<<xai-[[a80]]>>"])
        .fp(&["xai-[[a10]]"]),
    rule("langsmith-api-key", "LangSmith API key", &["lsv2_"], r"\b(lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10})\b")
        .tp(&["LANGCHAIN_API_KEY=<<lsv2_pt_[[h32]]_[[h10]]>>"])
        .fp(&["lsv2_pt_[[h10]]"]),
    rule("pinecone-api-key", "Pinecone API key", &["pcsk_"], r"\b(pcsk_[A-Za-z0-9_]{40,120})\b")
        .tp(&["<<pcsk_[[a5]]_[[a64]]>>"])
        .fp(&["pcsk_[[a10]]"]),
    rule("cohere-api-key", "Cohere API key", &["cohere", "co_api_key"], keyed!("cohere|co_api_key", "[A-Za-z0-9]{40}"))
        .keyed()
        .tp(&["COHERE_API_KEY=<<[[a40]]>>"])
        .fp(&["cohere_model=command-r"]),
    rule("mistral-api-key", "Mistral API key", &["mistral"], keyed!("mistral", "[A-Za-z0-9]{32}"))
        .keyed()
        .tp(&["MISTRAL_API_KEY=<<[[a32]]>>"])
        .fp(&["mistral_model=mistral-large-latest"]),
    // ---- SaaS and productivity ---------------------------------------------------------------
    rule("okta-api-token", "Okta API token", &["okta"], keyed!("okta", "00[A-Za-z0-9_-]{40}"))
        .keyed()
        .tp(&["OKTA_API_TOKEN=<<00[[a40]]>>"])
        .fp(&["okta_domain=dev-123.okta.com"]),
    rule("auth0-client-secret", "Auth0 client secret", &["auth0"], keyed!("auth0[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9_-]{64}"))
        .keyed()
        .tp(&["AUTH0_CLIENT_SECRET=<<[[u64]]>>"])
        .fp(&["auth0_secret=[[a10]]"]),
    rule("linear-api-key", "Linear API key", &["lin_api_"], r"\b(lin_api_[A-Za-z0-9]{40})\b")
        .tp(&["<<lin_api_[[a40]]>>"])
        .fp(&["lin_api_[[a10]]"]),
    rule("notion-integration-token", "Notion integration token", &["ntn_"], r"\b(ntn_[0-9]{11}[A-Za-z0-9]{35})\b")
        .tp(&["NOTION_TOKEN=<<ntn_[[d11]][[a35]]>>"])
        .fp(&["ntn_[[d11]]"]),
    rule("notion-legacy-token", "Notion integration token (legacy)", &["secret_"], r"\b(secret_[A-Za-z0-9]{43})\b")
        .tp(&["<<secret_[[a43]]>>"])
        .fp(&["secret_[[a12]]", "secret_manager_name"]),
    rule("airtable-pat", "Airtable personal access token", &["pat"], r"\b(pat[A-Za-z0-9]{14}\.[a-f0-9]{64})\b")
        .tp(&["<<pat[[a14]].[[h64]]>>"])
        .fp(&["pattern.[[h64]]"]),
    rule("figma-pat", "Figma personal access token", &["figd_"], r"\b(figd_[A-Za-z0-9_-]{40})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<figd_[[u40]]>>"])
        .fp(&["figd_[[u10]]"]),
    rule("typeform-pat", "Typeform personal access token", &["tfp_"], r"\b(tfp_[A-Za-z0-9_.=-]{59})(?:[^A-Za-z0-9_.=-]|$)")
        .tp(&["<<tfp_[[a59]]>>"])
        .fp(&["tfp_[[a10]]"]),
    rule("hubspot-private-app-token", "HubSpot private app token", &["pat-na", "pat-eu"], r"\b(pat-(?:na|eu)[12]-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12})\b")
        .tp(&["<<pat-na1-[[uuid]]>>"])
        .fp(&["pat-na1-[[h8]]"]),
    rule("adobe-client-secret", "Adobe client secret", &["p8e-"], r"\b(p8e-[A-Za-z0-9_-]{32})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<p8e-[[a32]]>>"])
        .fp(&["p8e-[[a10]]"]),
    rule("clickup-api-token", "ClickUp API token", &["pk_"], r"\b(pk_\d{6,10}_[A-Z0-9]{32})\b")
        .tp(&["<<pk_[[d8]]_[[A32]]>>"])
        .fp(&["pk_live_[[a24]]"]),
    rule("frameio-api-token", "Frame.io API token", &["fio-u-"], r"\b(fio-u-[A-Za-z0-9_=-]{64})(?:[^A-Za-z0-9_=-]|$)")
        .tp(&["<<fio-u-[[u64]]>>"])
        .fp(&["fio-u-[[u10]]"]),
    rule("readme-api-token", "ReadMe API token", &["rdme_"], r"\b(rdme_[a-z0-9]{70})\b")
        .tp(&["<<rdme_[[l70]]>>"])
        .fp(&["rdme_[[l10]]"]),
    rule("intra42-client-secret", "42 Intra client secret", &["s-s4t2"], r"\b(s-s4t2(?:ud|af)-[a-f0-9]{64})\b")
        .tp(&["<<s-s4t2ud-[[h64]]>>"])
        .fp(&["s-s4t2ud-[[h10]]"]),
    rule("algolia-admin-key", "Algolia admin API key", &["algolia"], keyed!("algolia[A-Za-z0-9_.-]{0,20}(?:admin|write|api)", "[a-f0-9]{32}"))
        .keyed()
        .tp(&["ALGOLIA_ADMIN_KEY=<<[[h32]]>>"])
        .fp(&["algolia_app_id=[[A10]]"]),
    rule("zendesk-api-token", "Zendesk API token", &["zendesk"], keyed!("zendesk", "[A-Za-z0-9]{40}"))
        .keyed()
        .tp(&["ZENDESK_API_TOKEN=<<[[a40]]>>"])
        .fp(&["zendesk_subdomain=support"]),
    rule("intercom-access-token", "Intercom access token", &["intercom"], keyed!("intercom", "[A-Za-z0-9=_-]{60}"))
        .keyed()
        .tp(&["INTERCOM_ACCESS_TOKEN=<<dG9r[[a56]]>>"])
        .fp(&["intercom_app_id=[[l8]]"]),
    rule("contentful-delivery-token", "Contentful API token", &["contentful"], keyed!("contentful", "[A-Za-z0-9=_-]{43}"))
        .keyed()
        .tp(&["CONTENTFUL_ACCESS_TOKEN=<<[[u43]]>>"])
        .fp(&["contentful_space=[[l12]]"]),
    rule("trello-token", "Trello API token", &["trello"], keyed!("trello", "[a-f0-9]{64}|[a-f0-9]{32}"))
        .keyed()
        .tp(&["TRELLO_TOKEN=<<[[h64]]>>"])
        .fp(&["trello_board=[[a8]]"]),
    rule("ngrok-authtoken", "ngrok authtoken", &["ngrok"], keyed!("ngrok", "[A-Za-z0-9]{20,30}_[A-Za-z0-9]{20,30}"))
        .keyed()
        .tp(&["NGROK_AUTHTOKEN=<<[[a27]]_[[a21]]>>"])
        .fp(&["ngrok_region=eu"]),
    rule("asana-pat", "Asana personal access token", &["asana"], keyed!("asana", r"[0-9]/[0-9]{16}(?:/[0-9]{16})?:[A-Za-z0-9]{32}"))
        .keyed()
        .tp(&["ASANA_TOKEN=<<2/[[d16]]/[[d16]]:[[h32]]>>"])
        .fp(&["asana_workspace=[[d16]]"]),
    rule("twitter-bearer-token", "X (Twitter) bearer token", &["aaaaaaaaaaaaaaaaaaaaa"], r"\b(AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,150})")
        .tp(&["TWITTER_BEARER_TOKEN=<<AAAAAAAAAAAAAAAAAAAAA[[a20]]%3D[[a52]]>>"])
        .fp(&["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]),
    rule(
        "twitter-api-secret",
        "X (Twitter) API secret",
        &["twitter"],
        keyed!("twitter[A-Za-z0-9_.-]{0,20}secret", "[A-Za-z0-9]{50}"),
    )
    .keyed()
    .tp(&["TWITTER_API_SECRET=<<[[a50]]>>"])
    .fp(&["twitter_secret_name=x"]),
    rule("facebook-access-token", "Facebook access token", &["eaa"], r"\b(EAA[BCDGIJKLMNOPQRSTUVWXYZ][A-Za-z0-9]{80,})\b")
        .tp(&["access_token=<<EAAG[[a120]]>>"])
        .fp(&["EAAG[[a20]]"]),
    rule("facebook-app-secret", "Facebook app secret", &["facebook", "fb_"], keyed!(r"facebook[A-Za-z0-9_.-]{0,20}secret|fb_[A-Za-z0-9_.-]{0,10}secret", "[a-f0-9]{32}"))
        .keyed()
        .tp(&["FACEBOOK_APP_SECRET=<<[[h32]]>>"])
        .fp(&["facebook_app_id=[[d15]]"]),
    rule("dropbox-short-lived-token", "Dropbox access token", &["sl."], r"\b(sl\.(?:u\.)?[A-Za-z0-9_-]{130,1100})")
        .tp(&["DROPBOX_TOKEN=<<sl.u.[[u140]]>>"])
        .fp(&["sl.[[u20]]"]),
    rule("mapbox-secret-token", "Mapbox secret token", &["sk.eyj"], r"\b(sk\.eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,})")
        .tp(&["MAPBOX_SECRET=<<sk.eyJ1Ijoi[[a40]].[[u22]]>>"])
        .fp(&["pk.eyJ1Ijoi[[a40]].[[u22]]"]),
    rule("yandex-api-key", "Yandex Cloud API key", &["aqvn"], r"\b(AQVN[A-Za-z0-9_-]{35,38})(?:[^A-Za-z0-9_-]|$)")
        .tp(&["<<AQVN[[a36]]>>"])
        .fp(&["AQVN[[a10]]"]),
    // ---- HTTP credentials ---------------------------------------------------------------------
    rule("bearer-token", "Bearer token", &["bearer"], r"(?i)\bbearer\s+((?-i:[A-Za-z0-9._~+/-]{20,}=*))")
        .keyed()
        .entropy(Some(3.5))
        .check(checks::opaque_token)
        .tp(&["curl -H 'Authorization: Bearer <<[[a40]]>>' https://api.corp.example"])
        .fp(&["Use a bearer token for authentication.", "Authorization: Bearer ${TOKEN}", "Bearer <token>"]),
    rule(
        "authorization-token",
        "Token in an Authorization header (token scheme)",
        &["authorization"],
        r#"(?i)\bauthorization["']?\s{0,3}[:=]\s{0,3}["']?token\s+((?-i:[A-Za-z0-9._~+/-]{20,500}=*))"#,
    )
    .keyed()
    .entropy(Some(3.0))
    .check(checks::opaque_token)
    .tp(&["Authorization: token <<[[h40]]>>"])
    .fp(&["Authorization: token $GITHUB_TOKEN", "authorization token rotation"]),
    rule("basic-auth-header", "HTTP basic credentials", &["basic"], r"(?i)\bbasic\s+((?-i:[A-Za-z0-9+/]{8,500}={0,2}))(?:[^A-Za-z0-9+/=]|$)")
        .keyed()
        .entropy(None)
        .check(checks::basic_credentials)
        .tp(&["Authorization: Basic <<YWxpY2U6czNjcjN0UGFzcw==>>"])
        .fp(&["a basic understanding of the code", "Authorization: Basic dXNlcjpwYXNzd29yZA=="]),
    rule(
        "docker-config-auth",
        "Docker registry credentials (config.json auth)",
        &["\"auth\""],
        r#""auth"\s*:\s*"([A-Za-z0-9+/]{8,500}={0,2})""#,
    )
    .keyed()
    .entropy(None)
    .check(checks::basic_credentials)
    .tp(&[r#"{"auths":{"registry.corp":{"auth":"<<Ym90OmhRN3BaNGtYMnZMOW5XMmI=>>"}}}"#])
    .fp(&[r#"{"auth": "none"}"#]),
    rule(
        "curl-basic-auth",
        "Password on a curl command line",
        &["curl"],
        r#"\bcurl\b[^\r\n]{0,200}?\s(?:-u|--user)\s*["']?[^\s:"']{1,64}:([^\s"']{4,128})"#,
    )
    .keyed()
    .entropy(None)
    .check(checks::command_line_password)
    .tp(&["curl -u admin:<<[[a16]]>> https://jenkins.corp/api"])
    .fp(&["curl -u admin:$ADMIN_PASSWORD https://x", "curl -u user:pass https://x"]),
    rule(
        "command-line-secret",
        "Secret passed as a command-line flag",
        &["--api", "--token", "--access", "--auth", "--secret", "--client", "--passw"],
        r#"(?i)(?:^|\s)--(?:api[_-]?key|apikey|token|access[_-]?token|auth[_-]?token|secret|client[_-]?secret|password|passwd)(?:=|\s+)["']?((?-i:[A-Za-z0-9_.~+/=!@#%^*-]{8,256}))(?:["'\s;&)]|$)"#,
    )
    .keyed()
    .entropy(Some(3.0))
    .check(checks::command_line_password)
    .tp(&["./sync --api-key <<[[a32]]>> --region eu", "deploy --password=<<[[a12]]7>>"])
    .fp(&["--token-file ~/.config/token", "--password $DB_PASS", "--api-key=<KEY>", "--token [[z20]]"]),
    // ---- Generic -------------------------------------------------------------------------------
    rule(
        "generic-api-key",
        "Secret-looking value assigned to a secret-sounding name",
        &["key", "token", "secret", "credential", "bearer"],
        r#"(?i)((?:api[_.-]?key|apikey|secret|token|credential|access[_.-]?key|private[_.-]?key|auth[_.-]?key|signing[_.-]?key|encryption[_.-]?key|master[_.-]?key|client[_.-]?key|app[_.-]?key)[A-Za-z0-9_.-]{0,20})["']?\s{0,3}(?::=|=>|[:=])\s{0,3}["'`]?((?-i:[A-Za-z0-9_.~+/=-]{16,}))(?:["'`\s;,&)<\\]|$)"#,
    )
    .generic()
    .sev(Medium)
    .group(2)
    .entropy(None)
    .check(checks::generic_assignment)
    .tp(&["MY_SERVICE_API_KEY=<<[[a32]]>>", r#"{"client_secret": "<<[[u40]]>>"}"#, "token: <<[[uuid]]>>"])
    .fp(&[
        "tokenizer: meta-llama/Llama-3.1-8B-Instruct",
        "next_page_token: [[u40]]",
        "api_key = os.environ['API_KEY']",
        "secret_path: /var/run/secrets/kubernetes.io/serviceaccount",
        "public_key: [[b44]]",
        "max_tokens: 4096",
    ]),
    rule(
        "password-assignment",
        "Password assigned in configuration or code",
        &["passw", "pwd", "passphrase", "_pass", ".pass", "-pass"],
        r#"(?i)((?:(?:passw(?:or)?d|passphrase|pwd)[A-Za-z0-9_.-]{0,20}|[_.-]pass))["']?\s{0,3}(?::=|=>|[:=])\s{0,3}["'`]?([^\s"'`<>{}$;,]{6,})(?:["'`\s;,&)\\]|$)"#,
    )
    .generic()
    .sev(Medium)
    .group(2)
    .entropy(Some(2.2))
    .check(checks::password_assignment)
    .tp(&["DB_PASSWORD=<<Tr0ub4dor&3>>", r#"{"password": "<<Tr1cky!x9>>"}"#, "smtp_pass: <<[[a14]]>>"])
    .fp(&[
        "Set password= in the config",
        "password: required",
        "password_hash: pbkdf2_sha256$[[a20]]",
        "PASSWORD=${DB_PASSWORD}",
        "password: ********",
        "min_password_length: 12",
        "def extract(self, member, path=None, pwd=None):",
        "smtp.user, smtp.password = sim_auth[0], sim_auth[1]",
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::scanner;
    use crate::testkit::{Rng, expand};

    fn valid_kind(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    }

    #[test]
    fn the_table_is_well_formed() {
        assert!(RULES.len() >= 100, "{} rules", RULES.len());
        crate::engine::Scanner::new(RULES)
            .unwrap()
            .compile_all()
            .unwrap();
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "rule ids are unique");
        for rule in RULES {
            assert!(valid_kind(rule.id), "{}: id alphabet", rule.id);
            assert!(
                !rule.tp.is_empty(),
                "{}: needs a true-positive example",
                rule.id
            );
            assert!(
                !rule.fp.is_empty(),
                "{}: needs a false-positive example",
                rule.id
            );
            for keyword in rule.keywords {
                assert_eq!(
                    *keyword,
                    keyword.to_ascii_lowercase(),
                    "{}: keywords are lower case",
                    rule.id
                );
            }
        }
    }

    /// Every true-positive example is found by its rule (over the whole
    /// scanner, after overlap resolution, with the marked span exact), and
    /// every false-positive example gives no finding of its rule.
    #[test]
    fn every_rule_finds_its_examples() {
        let scanner = scanner();
        let mut failures = Vec::new();
        for rule in RULES {
            for (i, template) in rule.tp.iter().enumerate() {
                let (text, span) = expand(
                    template,
                    &mut Rng::from_label(&format!("{}/tp/{i}", rule.id)),
                );
                let found = scanner.scan(&text);
                let mine: Vec<_> = found.iter().filter(|m| m.rule.id == rule.id).collect();
                if mine.is_empty() {
                    let others: Vec<_> = found.iter().map(|m| m.rule.id).collect();
                    failures.push(format!(
                        "{}: missed TP {text:?} (found {others:?})",
                        rule.id
                    ));
                } else if let Some((start, end)) = span
                    && !mine.iter().any(|m| (m.start, m.end) == (start, end))
                {
                    let got: Vec<_> = mine.iter().map(|m| &text[m.start..m.end]).collect();
                    failures.push(format!(
                        "{}: TP {text:?} expected {:?}, got {got:?}",
                        rule.id,
                        &text[start..end]
                    ));
                }
            }
            for (i, template) in rule.fp.iter().enumerate() {
                let (text, _) = expand(
                    template,
                    &mut Rng::from_label(&format!("{}/fp/{i}", rule.id)),
                );
                let found = scanner.scan(&text);
                if found.iter().any(|m| m.rule.id == rule.id) {
                    failures.push(format!("{}: flagged FP {text:?}", rule.id));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn keywords_occur_in_true_positives() {
        // A rule whose keywords miss its own examples would never run.
        for rule in RULES {
            for (i, template) in rule.tp.iter().enumerate() {
                let (text, _) = expand(
                    template,
                    &mut Rng::from_label(&format!("{}/tp/{i}", rule.id)),
                );
                let lower = text.to_ascii_lowercase();
                assert!(
                    rule.keywords.iter().any(|k| lower.contains(k)),
                    "{}: no keyword in {text:?}",
                    rule.id
                );
            }
        }
    }
}
