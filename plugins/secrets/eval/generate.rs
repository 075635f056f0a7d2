//! The deterministic generator of `eval/cases.jsonl`, shared by
//! `examples/gen_cases.rs` (which writes the file) and `tests/eval.rs`
//! (which checks the committed file is what this produces).
//!
//! Positives: every rule's true-positive templates placed in varied
//! surroundings (logs, chat, .env files, shell, YAML, code), plus
//! hand-written realistic leaks. Negatives: hand-written hard negatives, each
//! drawn a few times with different random parts; rule-table FP examples
//! are deliberately not reused here.

use warden_secrets::rules::RULES;
use warden_secrets::testkit::{Rng, expand};

pub struct Case {
    pub text: String,
    pub secret: bool,
    pub kind: Option<String>,
}

/// Surroundings a leaked value shows up in; `{}` is the value.
const SURROUNDINGS: &[&str] = &[
    "{}",
    "Here is the config you asked for:\n```\n{}\n```\nLet me know if it works.",
    "2026-11-30T12:00:00Z INFO worker started with {}",
    "# .env\nNODE_ENV=production\nPORT=8080\n{}\nLOG_LEVEL=info\n",
    "Error: request failed (config: {}). Retrying in 5s",
    "my deploy is broken, here's what I have:\n{}\nwhat's wrong?",
    "env:\n  - name: APP_MODE\n    value: prod\n# {}\n",
    "#!/bin/sh\nset -e\n{}\n./run.sh --verbose\n",
];

/// Realistic leaks written by hand; `kind` is the rule expected to fire.
const POSITIVES: &[(&str, &str)] = &[
    (
        "aws-access-key-id",
        "[default]\naws_access_key_id = AKIA[[B16]]\naws_secret_access_key = [[b40]]\nregion = eu-west-1",
    ),
    (
        "aws-secret-access-key",
        "export AWS_SECRET_ACCESS_KEY=\"[[b40]]\"",
    ),
    (
        "github-pat",
        "remote: https://oauth2:ghp_[[a36]]@github.com/acme/infra.git",
    ),
    (
        "github-fine-grained-pat",
        "gh auth login --with-token <<< github_pat_11[[A20]]_[[a59]]",
    ),
    (
        "gitlab-pat",
        "curl --header \"PRIVATE-TOKEN: glpat-[[u20]]\" https://gitlab.corp/api/v4/projects",
    ),
    (
        "slack-bot-token",
        "const slack = new WebClient('xoxb-[[d12]]-[[d13]]-[[a24]]');",
    ),
    (
        "slack-webhook-url",
        "requests.post(\"https://hooks.slack.com/services/T[[A8]]/B[[A10]]/[[a24]]\", json=msg)",
    ),
    (
        "stripe-secret-key",
        "stripe.api_key = \"sk_live_51[[a97]]\"",
    ),
    (
        "openai-api-key",
        "client = OpenAI(api_key=\"sk-proj-[[u74]]T3BlbkFJ[[u74]]\")",
    ),
    (
        "anthropic-api-key",
        "ANTHROPIC_API_KEY=sk-ant-api03-[[u93]]AA python agent.py",
    ),
    (
        "huggingface-access-token",
        "huggingface-cli login --token hf_[[x34]]",
    ),
    (
        "private-key",
        "ssh key that works:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA[[b40]]\n[[b70]]\n[[b70]]\n[[b30]]\n-----END OPENSSH PRIVATE KEY-----",
    ),
    (
        "private-key",
        "{\"type\": \"service_account\", \"project_id\": \"acme\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEv[[b59]]\\n[[b64]]\\n[[b64]]\\n-----END PRIVATE KEY-----\\n\"}",
    ),
    (
        "jwt",
        "Cookie: session=eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJ1c2VyIiwiZXhwIjoxNzAwMDAwMDAwfQ.[[u86]]",
    ),
    (
        "postgres-url-password",
        "DATABASE_URL=postgresql://app_user:[[a24]]@prod-db.internal:5432/app?sslmode=require",
    ),
    (
        "mongodb-url-password",
        "client = MongoClient(\"mongodb+srv://reporting:[[a16]]@cluster1.x7y8z.mongodb.net/analytics\")",
    ),
    (
        "redis-url-password",
        "CELERY_BROKER_URL = 'redis://:[[a32]]@redis.internal:6379/1'",
    ),
    (
        "mysql-url-password",
        "SQLALCHEMY_DATABASE_URI=mysql+pymysql://shop:[[a14]]9@db:3306/shop",
    ),
    (
        "connection-string-password",
        "\"ConnectionStrings\": { \"Default\": \"Server=sql01;Database=Billing;User Id=billing;Password=[[a12]]7!;\" }",
    ),
    (
        "password-assignment",
        "spring.datasource.password=[[a10]]42",
    ),
    ("password-assignment", "ldap_bind_password: \"K9#[[a12]]\""),
    ("password-assignment", "DB_PASS=q7[[a10]]"),
    ("generic-api-key", "WEATHER_API_KEY=[[h32]]"),
    ("generic-api-key", "config.secret_key = '[[u50]]'"),
    ("generic-api-key", "\"apiKey\": \"[[a40]]\","),
    (
        "bearer-token",
        "curl -H \"Authorization: Bearer [[a48]]\" https://api.internal/v1/users",
    ),
    (
        "basic-auth-header",
        "GET /admin HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46ZzBvZC1sdWNrLTIwMjY=\r\n",
    ),
    ("sendgrid-api-key", "SENDGRID_API_KEY='SG.[[u22]].[[u43]]'"),
    (
        "npm-access-token",
        "//registry.npmjs.org/:_authToken=npm_[[a36]]",
    ),
    (
        "pypi-upload-token",
        "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc[[u120]]",
    ),
    (
        "twilio-auth-token",
        "client = Client(account_sid, twilio_auth_token='[[h32]]')",
    ),
    (
        "gcp-api-key",
        "<script src=\"https://maps.googleapis.com/maps/api/js?key=AIza[[u35]]&callback=init\"></script>",
    ),
    (
        "azure-storage-account-key",
        "AZURE_STORAGE_CONNECTION_STRING=\"DefaultEndpointsProtocol=https;AccountName=prodlogs;AccountKey=[[b86]]==;EndpointSuffix=core.windows.net\"",
    ),
    (
        "datadog-api-key",
        "DD_API_KEY=[[h32]] DD_SITE=datadoghq.eu ./agent",
    ),
    ("vault-service-token", "vault login hvs.CAESI[[u100]]"),
    (
        "telegram-bot-token",
        "bot = telebot.TeleBot(\"[[d10]]:AA[[u33]]\")",
    ),
    (
        "discord-webhook-url",
        "WEBHOOK=https://discord.com/api/webhooks/[[d19]]/[[u68]]",
    ),
    (
        "url-password",
        "pip install --index-url https://deploy:[[a20]]@pypi.corp.example/simple pkg",
    ),
    (
        "curl-basic-auth",
        "curl --user admin:[[a14]]3 -X POST https://ci.corp/job/build",
    ),
    (
        "shopify-access-token",
        "headers = {'X-Shopify-Access-Token': 'shpat_[[h32]]'}",
    ),
    (
        "databricks-token",
        "databricks configure --token <<< dapi[[h32]]",
    ),
    (
        "docker-hub-token",
        "echo dckr_pat_[[u27]] | docker login -u acme --password-stdin",
    ),
    (
        "doppler-token",
        "DOPPLER_TOKEN=dp.st.prd.[[a43]] doppler run -- npm start",
    ),
    (
        "jwt",
        "{\"access_token\":\"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhdXRoIiwic3ViIjoiNDIifQ.[[u86]]\",\"token_type\":\"Bearer\"}",
    ),
    // Shapes the rules may not cover; misses here are real recall losses.
    (
        "command-line-secret",
        "./sync --api-key [[a32]] --region eu",
    ),
    (
        "generic-api-key",
        "fetch(url, { headers: { 'x-api-key': '[[a40]]' } })",
    ),
    ("generic-api-key", "X-API-Key: [[h32]]"),
    (
        "aws-secret-access-key",
        "aws configure set aws_secret_access_key [[b40]]",
    ),
    (
        "password-assignment",
        "PGPASSWORD=[[a16]] psql -h db -U app",
    ),
    (
        "password-assignment",
        "mysql -u root -p[[a12]] shop < dump.sql",
    ),
    ("password-assignment", "  password: [[a8]]3#"),
    (
        "jdbc-url-password",
        "jdbc:sqlserver://db:1433;databaseName=app;user=sa;password=[[a12]]",
    ),
    ("github-pat", "{\"Authorization\": \"token ghp_[[a36]]\"}"),
    ("generic-api-key", "SECRET_KEY_BASE=[[h128]]"),
    (
        "generic-api-key",
        "DJANGO_SECRET_KEY='django-insecure-[[u50]]'",
    ),
    ("generic-api-key", "JWT_SECRET=[[a32]]"),
    ("generic-api-key", "ENCRYPTION_KEY=[[b44]]"),
    ("authorization-token", "Authorization: token [[h40]]"),
    ("password-assignment", "passwd: [[a10]]1"),
    ("generic-api-key", "heroku config:set API_TOKEN=[[a40]]"),
    (
        "npmrc-auth-token",
        "npm config set //registry.npmjs.org/:_authToken [[uuid]]",
    ),
    (
        "private-key",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI[[b55]]\n[[b64]]\n[[b20]]\n-----END EC PRIVATE KEY-----",
    ),
    (
        "password-assignment",
        "Here's the .pgpass line: db.internal:5432:app:app:[[a16]]",
    ),
    (
        "url-password",
        "SMTP_URL=smtp://mailer:[[a16]]@smtp.corp.example:587",
    ),
    ("gitlab-pat", "`export GITLAB_TOKEN=glpat-[[u20]]`"),
];

/// Hard negatives: things that look like secrets to a careless rule.
const NEGATIVES: &[&str] = &[
    // Identifiers and digests.
    "request_id=[[uuid]] status=200 duration_ms=42",
    "{\"id\": \"[[uuid]]\", \"type\": \"order\", \"created\": \"2026-11-30\"}",
    "trace_id: [[h32]] span_id: [[h16]]",
    "commit [[h40]]\nAuthor: Dev <dev@corp.example>\n\n    Fix the flaky test",
    "Merge pull request #4821 from acme/feature (HEAD -> [[h40]])",
    "image: registry.corp/app@sha256:[[h64]]",
    "[[h64]]  release-1.4.2.tar.gz",
    "\"integrity\": \"sha512-[[b86]]==\"",
    "etag: \"[[h32]]\"",
    "go.sum: golang.org/x/net v0.30.0 h1:[[b43]]=",
    "checksum_sha256 = \"[[h64]]\"",
    "Cache-Key: build-[[h40]]",
    "session_id=[[h32]]; Path=/; HttpOnly",
    "The object ETag is [[h32]] and the version id is [[a32]].",
    "UUID of the device: [[uuid]]",
    "transaction [[H16]] confirmed in block [[d8]]",
    "stripe customer cus_[[a14]] subscribed to price_[[a24]]",
    "idempotency_key: [[uuid]]",
    "cache_key = \"user:[[d6]]:profile:[[h16]]\"",
    // Base64 of ordinary text and data.
    "payload: SGVsbG8sIHdvcmxkISBUaGlzIGlzIGEgdGVzdCBtZXNzYWdlIGZvciB0aGUgcXVldWUu",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk[[b20]]AAAAASUVORK5CYII=",
    "encoded body: eyJ1c2VyIjogImFsaWNlIiwgImFjdGlvbiI6ICJsb2dpbiJ9",
    "base64 of the config: bG9nX2xldmVsOiBpbmZvCnBvcnQ6IDgwODAKd29ya2VyczogNAo=",
    // Public keys and publishable keys.
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ[[b200]] dev@laptop",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[[b43]] ci@runner",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A[[b32]]\n[[b64]]\n[[b64]]\n-----END PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE[[b44]]\n[[b64]]\n[[b64]]\n-----END CERTIFICATE-----",
    "STRIPE_PUBLISHABLE_KEY=pk_live_[[a24]]",
    "mapboxgl.accessToken = 'pk.eyJ1IjoiYWNtZSIsImEiOiJ[[a20]]In0.[[u22]]';",
    "public_key: [[b44]]",
    "\"publicKey\": \"BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U\"",
    "gpg --recv-keys [[H40]]",
    "key fingerprint = [[H4]] [[H4]] [[H4]] [[H4]] [[H4]]  [[H4]] [[H4]] [[H4]] [[H4]] [[H4]]",
    // Placeholders and documentation examples.
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "OPENAI_API_KEY=sk-...your-key-here...",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "Set STRIPE_SECRET_KEY to your secret key (it starts with sk_live_).",
    "api_key: <YOUR_API_KEY>",
    "token: ${{ secrets.GITHUB_TOKEN }}",
    "password: \"{{ vault_db_password }}\"",
    "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/XXXXXXXXX/XXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX",
    "DATABASE_URL=postgres://user:password@localhost:5432/mydb",
    "DATABASE_URL=postgres://postgres:postgres@localhost:5432/test",
    "mongodb://<username>:<password>@cluster0.mongodb.net/test",
    "redis://localhost:6379/0",
    "Authorization: Bearer <token>",
    "Authorization: Bearer $ACCESS_TOKEN",
    "export API_TOKEN=changeme",
    "client_secret = \"REPLACE_WITH_YOUR_CLIENT_SECRET\"",
    "secret_key = \"your-secret-key\"",
    "password = \"********\"",
    "api_key = \"[[z32]]\"",
    "token = \"0000000000000000000000000000000000000000\"",
    "SECRET_KEY=abcdefghijklmnopqrstuvwxyz123456",
    // Passwords in prose and names without values.
    "Enter your password: then press Enter to continue.",
    "If you forgot the password= parameter the request fails with 401.",
    "The password: field is required and must be at least 12 characters.",
    "Reset your password at https://accounts.corp.example/reset",
    "password_min_length: 12\npassword_require_symbols: true",
    "PASSWORD_HASHERS = ['django.contrib.auth.hashers.Argon2PasswordHasher']",
    "password: required",
    "Please never share your password or API key with anyone.",
    "os.environ[\"OPENAI_API_KEY\"]",
    "api_key = os.getenv('STRIPE_API_KEY')",
    "const token = process.env.GITHUB_TOKEN;",
    "valueFrom:\n  secretKeyRef:\n    name: db-credentials\n    key: password",
    "variable \"db_password\" {\n  type      = string\n  sensitive = true\n}",
    "password = var.db_password",
    "aws_secret_access_key =",
    "GITHUB_TOKEN, NPM_TOKEN and PYPI_TOKEN must be set in CI.",
    "The `secret` field of the webhook is used to sign payloads.",
    "token_type: bearer\nexpires_in: 3600",
    "max_tokens: 4096\ntemperature: 0.2",
    "tokenizer: meta-llama/Llama-3.1-8B-Instruct",
    "\"next_page_token\": \"[[u60]]\"",
    "secret_name: prod/db/[[l8]]",
    "secretArn: arn:aws:secretsmanager:eu-west-1:[[d12]]:secret:prod/db-[[a6]]",
    "key_id: [[uuid]]",
    "kms_key_id = \"arn:aws:kms:us-east-1:[[d12]]:key/[[uuid]]\"",
    "csrf_token: [[u43]]",
    // Test fixtures that say so.
    "fake_api_key = \"fake-[[a32]]\"",
    "TEST_FIXTURE_TOKEN=fixture_[[a30]]",
    "token: \"dummy-token-[[a20]]\"",
    "password: \"not-a-real-password-[[d4]]\"",
    "mock_secret = \"mock_[[a28]]_sample\"",
    // Hashes of passwords (not the passwords themselves).
    "$2b$12$[[b53]]",
    "password_hash: \"$argon2id$v=19$m=65536,t=3,p=4$[[b22]]$[[b43]]\"",
    "admin:$apr1$[[a8]]$[[b22]]",
    // Code, URLs and prose with secret-ish words.
    "def get_secret(name: str) -> str:\n    return client.get_secret_value(SecretId=name)['SecretString']",
    "The access token expires after 60 minutes; use the refresh token to get a new one.",
    "curl -u $USER:$PASS https://api.corp.example",
    "https://user@example.com:8443/path?query=1",
    "git@github.com:acme/infra.git",
    "https://docs.stripe.com/keys#obtain-api-keys",
    "postgres://db.internal:5432/app",
    "Use the key-value store for session data.",
    "Bearer tokens are sent in the Authorization header.",
    "Basic authentication is deprecated; use OAuth instead.",
    "MIT License\n\nCopyright (c) 2026 Acme\n\nPermission is hereby granted, free of charge, to any person obtaining a copy",
    "A3-sized posters and A4 flyers are in the print queue.",
    "The Asia-Pacific region (ASIA) had 12% growth; AKIA is not a word.",
    "color: #[[h6]]; background: #[[h6]];",
    "version: 1.4.2+build.[[h8]]",
    "Slack: join #eng-secrets-rotation for the key rotation schedule.",
    "HF model id: sentence-transformers/all-MiniLM-L6-v2",
    "npm install lodash@4.17.21 --save",
    "docker pull ghcr.io/acme/api:[[h12]]",
    "IBAN DE89370400440532013000 is the test account from the docs.",
    "The sk_ prefix marks secret keys and pk_ marks publishable keys.",
    "eyJ is how every base64-encoded JSON object starts.",
    "JWT format: header.payload.signature, each base64url-encoded.",
    "ya29. prefix tokens are short-lived Google OAuth access tokens.",
    "Run `vault kv get secret/app` to read the app's secrets.",
    "[[a12]] [[a12]] [[a12]] random words without any assignment",
    "sort_key: \"2026-11-30#[[h16]]\"",
    "primary_key: [[uuid]]",
    "The signature is [[b86]]== (base64, public verification only).",
    "x-amz-request-id: [[A16]]\nx-amz-id-2: [[b76]]=",
    "Set-Cookie: _ga=GA1.2.[[d10]].[[d10]]; Max-Age=63072000",
    "otpauth is disabled; recovery codes were printed to the console.",
    // A second batch, written before running the rules on them.
    "sha1: [[h40]]",
    "\"revision\": \"[[h40]]\"",
    "device_token_count: 3",
    "The token limit is 8192 tokens per request.",
    "secret santa gift exchange on Friday",
    "access_key_id: [[uuid]]",
    "\"password_changed_at\": \"2026-11-30T10:00:00Z\"",
    "last_password_reset: 2026-11-30",
    "pwd: /home/dev/project",
    "PWD=/usr/src/app\nOLDPWD=/root\nHOME=/root",
    "Passphrase protected: yes",
    "\"password_policy\": {\"min_length\": 12}",
    "ssh_key_path: ~/.ssh/id_ed25519",
    "private_key_file = /etc/ssl/private/server.key",
    "SSL_KEY_PASSWORD_FILE=/run/secrets/ssl_pass",
    "arn:aws:iam::[[d12]]:role/deploy",
    "s3://acme-backups/[[h16]]/dump.sql.gz",
    "The build hash [[h40]] matched the signed release.",
    "GOOGLE_CLIENT_ID=[[d12]]-[[l32]].apps.googleusercontent.com",
    "sentry dsn: https://[[h32]]@o[[d6]].ingest.sentry.io/[[d7]]",
    "webhook_url: https://example.com/hooks/incoming",
    "token: null",
    "\"token\": \"\"",
    "api_key: ''",
    "The API key looks like sk_live_ followed by 24 characters.",
    "AKIA followed by 16 uppercase letters and digits identifies an AWS access key.",
    "eyJhbGciOiJIUzI1NiJ9 decodes to {\"alg\":\"HS256\"}",
    "xoxb- tokens are bot tokens",
    "uuid4: [[uuid]] [[uuid]] [[uuid]]",
    "LICENSE-KEY-FORMAT: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX",
    "Card ending in 4242 was charged $20.00",
    "base64 -d <<< SGVsbG8gV29ybGQK",
    "openssl rand -hex 32 > secret.key",
    "kubectl create secret generic db --from-literal=password=$DB_PASSWORD",
    "helm install app ./chart --set auth.password=${PASSWORD}",
    "docker run -e POSTGRES_PASSWORD -p 5432:5432 postgres:16",
    "echo \"token=$(cat /run/secrets/token)\"",
    "secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  [[h64]]",
    "md5: [[h32]]",
    "Content-MD5: [[b22]]==",
    "X-Request-Id: [[uuid]]",
    "traceparent: 00-[[h32]]-[[h16]]-01",
    "nonce=[[h32]]",
    "salt: [[b22]]",
    "HMAC-SHA256 signature: [[h64]]",
    "state=[[u43]]&code_challenge=[[u43]]&code_challenge_method=S256",
    "\"token_usage\": {\"prompt\": 812, \"completion\": 96}",
    "The tokens were counted: 1,204 input tokens.",
];

/// Each negative template is drawn this many times.
const NEGATIVE_DRAWS: usize = 2;

pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut rng = Rng::from_label("eval/surroundings");
    for rule in RULES {
        for (i, template) in rule.tp.iter().enumerate() {
            let label = format!("eval/{}/{i}", rule.id);
            let (value, _) = expand(template, &mut Rng::from_label(&label));
            let surrounding = rng.pick(SURROUNDINGS);
            cases.push(Case {
                text: surrounding.replace("{}", &value),
                secret: true,
                kind: Some(rule.id.to_string()),
            });
        }
    }
    for (i, (kind, template)) in POSITIVES.iter().enumerate() {
        let (text, _) = expand(
            template,
            &mut Rng::from_label(&format!("eval/positive/{i}")),
        );
        cases.push(Case {
            text,
            secret: true,
            kind: Some((*kind).to_string()),
        });
    }
    for (i, template) in NEGATIVES.iter().enumerate() {
        for draw in 0..NEGATIVE_DRAWS {
            let (text, _) = expand(
                template,
                &mut Rng::from_label(&format!("eval/negative/{i}/{draw}")),
            );
            if draw > 0 && !template.contains("[[") {
                break;
            }
            cases.push(Case {
                text,
                secret: false,
                kind: None,
            });
        }
    }
    cases
}

/// The cases as JSON Lines.
pub fn jsonl(cases: &[Case]) -> String {
    let mut out = String::new();
    for case in cases {
        let mut object = serde_json::Map::new();
        object.insert("text".into(), case.text.clone().into());
        object.insert("secret".into(), case.secret.into());
        if let Some(kind) = &case.kind {
            object.insert("kind".into(), kind.clone().into());
        }
        out.push_str(&serde_json::Value::Object(object).to_string());
        out.push('\n');
    }
    out
}
