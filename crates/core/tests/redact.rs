//! The secret scrubber, line by line: each hostile line and what it must become.

use pipeline_responder_core::redact::{scrub, strip_controls, Redactor};

/// (line, what it must become). Every credential format the daemon promises to remove.
const CASES: &[(&str, &str)] = &[
    // AWS
    ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"),
    ("temp ASIAY34FZKBOKMUTVV7A here", "temp [REDACTED] here"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = [REDACTED]"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY make deploy", "AWS_SECRET_ACCESS_KEY=[REDACTED] make deploy"),
    ("+ aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCY", "+ aws configure set aws_secret_access_key [REDACTED]"),
    ("aws configure set aws_session_token IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", "aws configure set aws_session_token [REDACTED]"),
    ("export AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEJr//////////wEaCXVz", "export AWS_SESSION_TOKEN=[REDACTED]"),
    (r#""SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","#, r#""SecretAccessKey": "[REDACTED]","#),
    (r#""SessionToken": "FwoGZXIvYXdzEJr//////////wEaDM","#, r#""SessionToken": "[REDACTED]","#),
    ("GET https://b.s3.amazonaws.com/a?X-Amz-Credential=AKIDEXAMPLE%2F2026&X-Amz-Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024", "GET https://b.s3.amazonaws.com/a?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]"),
    // GitHub
    ("remote: ghp_abcdefghijklmnopqrstuvwxyz0123456789 denied", "remote: [REDACTED] denied"),
    ("token gho_16C7e42F292c6912E7710c838347Ae178B4a", "token [REDACTED]"),
    ("ghu_16C7e42F292c6912E7710c838347Ae178B4a in env", "[REDACTED] in env"),
    ("using ghs_16C7e42F292c6912E7710c838347Ae178B4a", "using [REDACTED]"),
    ("refresh ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498", "refresh [REDACTED]"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[REDACTED]"),
    ("git clone https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r", "git clone https://x-access-token:[REDACTED]@github.com/o/r"),
    // Slack
    ("slack xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx", "slack [REDACTED]"),
    ("user token xoxp-123456789012-abcdefghijkl", "user token [REDACTED]"),
    ("rotate xoxe-1-My0xLTEtMTIzNDU2Nzg done", "rotate [REDACTED] done"),
    ("app token xapp-1-A0123456789-1234567890123-abcdef0123456789", "app token [REDACTED]"),
    ("POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "POST [REDACTED]"),
    ("curl -X POST https://hooks.slack.com/workflows/T0123/A0456/789/abcdef -d x", "curl -X POST [REDACTED] -d x"),
    ("trigger https://hooks.slack.com/triggers/T0123/456/abcdef", "trigger [REDACTED]"),
    // npm, PyPI, GitLab
    ("//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789", "//registry.npmjs.org/:_authToken=[REDACTED]"),
    ("NPM token npm_abcdefghijklmnopqrstuvwxyz0123456789 leaked", "NPM token [REDACTED] leaked"),
    ("twine upload -p pypi-AgEIcHlwaS5vcmcCJGE0YjQ5ZjY2LTk3ZDItNDQ0Yy1hMzU5LWExNmY0YTcxNmY0ZAACKlszLCI", "twine upload -p [REDACTED]"),
    ("git push https://oauth2:glpat-abcdefghij0123456789@gitlab.com/g/p.git", "git push https://oauth2:[REDACTED]@gitlab.com/g/p.git"),
    ("gitlab token glpat-xxxxxxxxxxxxxxxxxxxx used", "gitlab token [REDACTED] used"),
    ("runner GR1348941abcdefghijklmnopqrst registered", "runner [REDACTED] registered"),
    // Stripe, Google, SendGrid, OpenAI-style
    ("Stripe::APIKey sk_live_4eC39HqLyjWDarjtT1zdp7dc rejected", "Stripe::APIKey [REDACTED] rejected"),
    ("  ✕ charges with api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc (12 ms)", "  ✕ charges with api_key=[REDACTED] (12 ms)"),
    ("restricted rk_test_4eC39HqLyjWDarjtT1zdp7dc", "restricted [REDACTED]"),
    ("maps AIzaSyA1234567890abcdefghijklmnopqrstuv ok", "maps [REDACTED] ok"),
    ("mail SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "mail [REDACTED]"),
    ("llm sk-proj-abcdefghijklmnopqrstuvwxyz012345", "llm [REDACTED]"),
    // JWT and Authorization headers
    ("id eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "id [REDACTED]"),
    ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer [REDACTED]"),
    ("-H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' https://x", "-H 'Authorization: Basic [REDACTED]' https://x"),
    ("authorization=token 0123456789abcdef0123", "authorization=token [REDACTED]"),
    ("curl -H \"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260127, Signature=abc\" x", "curl -H \"Authorization: AWS4-HMAC-SHA256 [REDACTED]\" x"),
    ("sent bearer 0123456789abcdef to api", "sent bearer [REDACTED] to api"),
    // URLs with credentials
    ("DATABASE_URL postgres://app:hunter2hunter2@db.internal:5432/app", "DATABASE_URL postgres://app:[REDACTED]@db.internal:5432/app"),
    ("fetching https://deploy:p%40ss@artifacts.example.com/x.tgz", "fetching https://deploy:[REDACTED]@artifacts.example.com/x.tgz"),
    ("curl -u admin:s3cretpass https://jenkins/api", "curl -u admin:[REDACTED] https://jenkins/api"),
    // password forms
    ("password=hunter2hunter2", "password=[REDACTED]"),
    ("DB_PASSWORD: 'correct horse'", "DB_PASSWORD: '[REDACTED]'"),
    ("mysql -h db -uroot -pS3cr3tPass app < dump.sql", "mysql -h db -uroot -p[REDACTED] app < dump.sql"),
    ("mysqldump -u admin -phunter2 --all-databases", "mysqldump -u admin -p[REDACTED] --all-databases"),
    ("docker login -u AWS -p eyJwYXlsb2FkIjoiYWJj registry", "docker login -u AWS -p [REDACTED] registry"),
    ("psql --password=hunter2 -h db", "psql --password=[REDACTED] -h db"),
    ("deploy --token abcdef123456", "deploy --token [REDACTED]"),
    ("\"api_key\": \"abc123def456\"", "\"api_key\": \"[REDACTED]\""),
    ("token: s3cr3t-t0ken", "token: [REDACTED]"),
    ("GITHUB_TOKEN=abc123 CLIENT_SECRET=xyz789 make", "GITHUB_TOKEN=[REDACTED] CLIENT_SECRET=[REDACTED] make"),
    ("Server=db;User Id=app;Password=Pa55w0rd;Database=x", "Server=db;User Id=app;Password=[REDACTED];Database=x"),
    // private keys
    ("-----BEGIN RSA PRIVATE KEY-----", "[REDACTED PRIVATE KEY]"),
    ("key: -----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n tail", "key: [REDACTED PRIVATE KEY]\\n tail"),
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\n-----END EC PRIVATE KEY-----\nafter", "[REDACTED PRIVATE KEY]\nafter"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", "[REDACTED PRIVATE KEY]"),
    (r#"{"type": "service_account", "private_key_id": "a1b2c3d4e5", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "client_email": "x@p.iam.gserviceaccount.com"}"#,
     r#"{"type": "service_account", "private_key_id": "[REDACTED]", "private_key": "[REDACTED]", "client_email": "x@p.iam.gserviceaccount.com"}"#),
    // lines that hold no secret stay as they are
    ("npm test exited 1", "npm test exited 1"),
    ("AccessDenied: not authorized to perform: secretsmanager:GetSecretValue", "AccessDenied: not authorized to perform: secretsmanager:GetSecretValue"),
    ("Unable to locate credentials. You can configure credentials by running \"aws configure\".", "Unable to locate credentials. You can configure credentials by running \"aws configure\"."),
    ("mkdir -p build && docker run -p8080:80 app", "mkdir -p build && docker run -p8080:80 app"),
    ("commit 9e1d4b7c0a5e8f2b3d6a1c4e7f0b2d5a8c1e4f7b by dev@example.com", "commit 9e1d4b7c0a5e8f2b3d6a1c4e7f0b2d5a8c1e4f7b by dev@example.com"),
    ("FAIL src/token.test.ts › refreshes an expired token", "FAIL src/token.test.ts › refreshes an expired token"),
    ("https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/p/build/p:1/?region=us-east-1", "https://us-east-1.console.aws.amazon.com/codesuite/codebuild/projects/p/build/p:1/?region=us-east-1"),
];

#[test]
fn every_credential_format_is_redacted_and_nothing_else() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let mut wrong = Vec::new();
    for (line, expected) in CASES {
        let out = scrub(line);
        if out != *expected {
            wrong.push(format!("  {line:?}\n  -> {out:?}\n  expected {expected:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n")
    );
}

#[test]
fn scrubbing_twice_changes_nothing_more() {
    for (line, _) in CASES {
        let once = scrub(line).into_owned();
        assert_eq!(scrub(&once), once, "{line}");
    }
}

#[test]
fn the_redactor_strips_controls_then_scrubs() {
    let r = Redactor::new(["configured-signing-secret-0123456789"]);
    assert_eq!(
        r.clean("\u{1b}[31mtoken=\u{1b}[0mabc123 configured-signing-secret-0123456789\u{7}"),
        "token=[REDACTED] [REDACTED]"
    );
    assert_eq!(strip_controls("ok"), "ok");
}
