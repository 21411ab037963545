//! How telling each line is, from the output formats of the tools people run in builds: test
//! runners (jest, mocha, vitest, node's test runner, pytest, unittest, go test, cargo test,
//! surefire, Gradle, dotnet test, rspec, phpunit), compilers (rustc, gcc/clang, tsc, javac,
//! msbuild, kotlinc, go build), linters (eslint, flake8, rubocop, prettier, black, checkstyle),
//! package managers (npm, yarn, pnpm, pip, Maven, Gradle, cargo, go, bundler, composer, NuGet),
//! docker build, CDK / CloudFormation / Terraform, cfn-guard, npm audit, coverage thresholds, AWS
//! throttling, and generic errors and stack traces. A score is 0 (noise) to 10 (this line says
//! why); the kind says what the line is evidence of.

use regex::RegexSet;
use std::sync::OnceLock;

/// What a line is evidence of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Test,
    Compile,
    Lint,
    Dependency,
    Infrastructure,
    Throttling,
    Timeout,
    Security,
    Coverage,
    /// An error of no particular tool.
    Generic,
    /// Tool boilerplate around an error ("re-run with -X", "a complete log is in"): a cap.
    Boilerplate,
    /// Warnings and progress: a cap.
    Quiet,
}

/// (score, kind, pattern). Boilerplate and Quiet entries cap the score instead of raising it.
const TABLE: &[(u8, Kind, &str)] = &[
    // --- test runners ---
    (9, Kind::Test, r"^\s*● \S"),
    (8, Kind::Test, r"^\s*(?:FAIL|✕|×|✗|✖)\s+\S"),
    (
        8,
        Kind::Test,
        r"^\s*(?:Expected|Received|Expected value|Received value|Expected length|Received length|Difference)(?: \w+)?:",
    ),
    (7, Kind::Test, r"^\s*[-+] (?:Expected|Received)\b"),
    (7, Kind::Test, r"expect\(.*\)\.\w+\("),
    (
        10,
        Kind::Test,
        r"\b(?:AssertionError|AssertionFailedError|ComparisonFailure|AssertError|ExpectationNotMetError|PHPUnit\\Framework\\ExpectationFailedException)\b",
    ),
    (
        9,
        Kind::Test,
        r"assertion(?: `[^`]*`)? failed|^\s*assert .* ==|^\s*Assertion failed",
    ),
    (8, Kind::Test, r"^\s*(?:left|right)(?: value)?:"),
    (7, Kind::Test, r"^\s*\d+ (?:failing|failed)\b"),
    (6, Kind::Test, r"^\s*\d+\) \S"),
    (
        7,
        Kind::Test,
        r"\bTests?:\s+(?:\d+ \w+, )*\d+ failed|Test Suites:\s+\d+ failed|Test Files\s+\d+ failed",
    ),
    (9, Kind::Test, r"^\s*not ok \d+"),
    (
        6,
        Kind::Test,
        r"^# fail\s+[1-9]|✖ failing tests:|^ℹ fail [1-9]",
    ),
    (10, Kind::Test, r"^FAILED \S+(?:::| - )"),
    (9, Kind::Test, r"^E {2,}\S"),
    (
        10,
        Kind::Dependency,
        r"ModuleNotFoundError: No module named|ImportError: cannot import name .* \(unknown location\)",
    ),
    (
        8,
        Kind::Test,
        r"^\S+ \.{3,} FAIL(?:ED)?$|\bexpected .*, got ",
    ),
    (
        7,
        Kind::Test,
        r"\b\d+ passed, [1-9]\d* failed\b|\b[1-9]\d* tests? failed\b",
    ),
    (9, Kind::Test, r"^ERROR \S+::"),
    (6, Kind::Test, r"^_{3,} \S.* _{3,}$"),
    (7, Kind::Test, r"^=+ .*\b\d+ (?:failed|errors?)\b.*=+$"),
    (8, Kind::Test, r"^\S+\.py:\d+: \w+(?:Error|Exception)$"),
    (10, Kind::Test, r"^(?:FAIL|ERROR): \w+ \("),
    (6, Kind::Test, r"^FAILED \((?:failures|errors)="),
    (10, Kind::Test, r"^\s*--- FAIL: "),
    (10, Kind::Test, r"^\s+\S+_test\.go:\d+: "),
    (
        7,
        Kind::Test,
        r"^FAIL\s+\S+\s+\(?[\d.]+s\)?$|^FAIL\s+\S+\s+\[build failed\]$",
    ),
    (
        10,
        Kind::Test,
        r"^panic: |thread '.*' panicked at|^\s*panicked at ",
    ),
    (8, Kind::Test, r"^test \S+ \.\.\. FAILED$"),
    (6, Kind::Test, r"^---- \S+ stdout ----$"),
    (
        6,
        Kind::Test,
        r"^test result: FAILED|^error: test failed|^error: \d+ targets? failed",
    ),
    (
        7,
        Kind::Test,
        r"Tests run: \d+, Failures: [1-9]|Tests run: \d+, Failures: \d+, Errors: [1-9]",
    ),
    (9, Kind::Test, r"<<< (?:FAILURE|ERROR)!"),
    (
        10,
        Kind::Test,
        r"^\[ERROR\]\s+\S+[.#]\w+:\d+ |^\[ERROR\]\s+\w+\(\S+\)\s",
    ),
    (
        7,
        Kind::Test,
        r"^\[ERROR\] (?:Failures|Errors|Tests in error):\s*$",
    ),
    (
        6,
        Kind::Test,
        r"There are test failures|There were failing tests|tests completed, \d+ failed",
    ),
    (
        10,
        Kind::Test,
        r"expected:\s*<.*> but was:\s*<|expected \[.*\] but found \[|Expected: .* but: ",
    ),
    (10, Kind::Test, r"^\S.* > .* FAILED$"),
    (10, Kind::Test, r"^\s*Failed [\w.`+<>]+(?:\(.*\))? \["),
    (7, Kind::Test, r"^\s*Error Message:$"),
    (10, Kind::Test, r"^\s*Assert\.\w+\(\) Failure"),
    (8, Kind::Test, r"^\s*Actual: "),
    (
        7,
        Kind::Test,
        r"^Failed!\s+-\s+Failed:\s+[1-9]|Total tests: .*Failed: [1-9]",
    ),
    (10, Kind::Test, r"^\s*Failure/Error:"),
    (8, Kind::Test, r"^rspec \./\S+:\d+"),
    (7, Kind::Test, r"^\d+ examples?, [1-9]\d* failures?"),
    (8, Kind::Test, r"^\s+(?:expected|got):? "),
    (
        7,
        Kind::Test,
        r"^There (?:was|were) \d+ (?:failure|error)s?:",
    ),
    (9, Kind::Test, r"^\d+\) [\w\\]+::\w+"),
    (10, Kind::Test, r"Failed asserting that"),
    (6, Kind::Test, r"^FAILURES!$|^ERRORS!$"),
    (
        7,
        Kind::Test,
        r"^Tests: \d+, Assertions: \d+, (?:Failures|Errors)",
    ),
    (
        9,
        Kind::Test,
        r"Timeout of \d+ms exceeded|^panic: test timed out after",
    ),
    // sbt, minitest, ExUnit, ctest, XCTest/xcodebuild, clojure.test, prove, dart, R CMD check,
    // busted, eunit.
    (
        8,
        Kind::Test,
        r"^\[error\] Failed tests:|^\[error\] Failed: Total \d+, Failed [1-9]|^\[error\]\s+\S+ failed|^\[info\] \*\*\* \d+ TESTS? FAILED",
    ),
    (
        9,
        Kind::Test,
        r"^\s*\d+\) (?:Failure|Error):$|^\s*\d+\) test .+ \([\w.]+\)$",
    ),
    (
        7,
        Kind::Test,
        r"\d+ (?:runs|tests), \d+ assertions, (?:[1-9]\d* failures|\d+ failures, [1-9]\d* errors)|\b\d+ (?:tests?|properties), [1-9]\d* failures?\b",
    ),
    (
        8,
        Kind::Test,
        r"The following tests FAILED:|tests passed, [1-9]\d* tests? failed out of|\*\*\*Failed\b|\*\*\*Exception:",
    ),
    (
        10,
        Kind::Test,
        r"XCTAssert\w* failed|^\S+:\d+: error: -\[\S+ \S+\] :",
    ),
    (
        7,
        Kind::Test,
        r"\*\* TEST FAILED \*\*|Testing failed:|\bExecuted \d+ tests?, with [1-9]\d* failures?",
    ),
    (10, Kind::Test, r"^(?:FAIL|ERROR) in \("),
    (10, Kind::Test, r"^#\s+Failed test\b"),
    (
        7,
        Kind::Test,
        r"^Failed \d+/\d+ (?:test programs|subtests)|^Result: FAIL$|^Some tests failed\.$",
    ),
    (
        9,
        Kind::Test,
        r"^\* checking .* \.\.\. ERROR$|^\d+ successes / \d+ failures / [1-9]\d* errors|^\d+ successes / [1-9]\d* failures",
    ),
    (
        7,
        Kind::Test,
        r"^\s*Failed: [1-9]\d*\.\s+Skipped: \d+\.\s+Passed: \d+\.|\*failed\*$",
    ),
    // --- compilers ---
    (10, Kind::Compile, r"^error\[E\d+\]: "),
    (6, Kind::Compile, r"^\s*--> \S+:\d+:\d+"),
    (
        7,
        Kind::Compile,
        r"^error: could not compile|^error: aborting due to",
    ),
    (
        10,
        Kind::Compile,
        r"^\S+:\d+:\d+: (?:fatal )?error: |^\S+:\d+: error: |^\S+\(\d+\): error ",
    ),
    (
        9,
        Kind::Compile,
        r"undefined reference to|^Undefined symbols for architecture|ld: symbol\(s\) not found|^ld: error:",
    ),
    (6, Kind::Compile, r"^collect2: error:|^clang: error: linker"),
    (10, Kind::Compile, r"error TS\d+:"),
    (10, Kind::Compile, r": error (?:CS|FS|BC|VB|C|LNK)\d+:"),
    (
        7,
        Kind::Compile,
        r"^\[ERROR\] COMPILATION ERROR|^\[ERROR\] Failed to execute goal \S*maven-compiler-plugin",
    ),
    (
        10,
        Kind::Compile,
        r"^\[ERROR\] \S+\.(?:java|kt|scala|groovy):\[\d+,\d+\] ",
    ),
    (
        9,
        Kind::Compile,
        r"cannot find symbol|incompatible types:|cannot be applied to|does not override",
    ),
    (10, Kind::Compile, r"^e: (?:file://)?\S+\.kts?:"),
    (9, Kind::Compile, r"^\.?/?\S+\.go:\d+:\d+: "),
    (
        8,
        Kind::Compile,
        r"^\s*(?:SyntaxError|IndentationError|TabError): ",
    ),
    (
        6,
        Kind::Compile,
        r"Compilation failed|compilation terminated|^Compiling .* failed",
    ),
    // --- linters ---
    (9, Kind::Lint, r"^\s+\d+:\d+\s+error\s+\S.*$"),
    (8, Kind::Lint, r"✖ \d+ problems? \(\d+ errors?"),
    (9, Kind::Lint, r"^\S+\.py:\d+:\d+: [EFWC]\d{3} "),
    (
        7,
        Kind::Lint,
        r"\d+ files? inspected, \d+ offenses? detected|offenses? detected",
    ),
    (
        8,
        Kind::Lint,
        r"Code style issues (?:found|were found)|^would reformat |files? would be reformatted",
    ),
    (
        9,
        Kind::Lint,
        r"You have \d+ Checkstyle violations?|\[checkstyle\]|There (?:is|are) \d+ errors? reported by Checkstyle",
    ),
    (8, Kind::Lint, r"^\S+:\d+:\d+: .+ \((?:\w+)\)$"),
    (6, Kind::Lint, r"^\[warn\] \S+\.\w+$"),
    (9, Kind::Lint, r"ESLint found too many warnings"),
    // --- package managers ---
    (
        9,
        Kind::Dependency,
        r"^npm (?:ERR!|error) code (?:E404|ETARGET|ERESOLVE|E4\d\d|E5\d\d|ENOTFOUND|ECONNRESET|ETIMEDOUT|EAI_AGAIN|EINTEGRITY|ENOVERSIONS)",
    ),
    (
        10,
        Kind::Dependency,
        r"^npm (?:ERR!|error) (?:404|notarget|ERESOLVE|peer dep)|No matching version found for|Could not resolve dependency|Conflicting peer dependency",
    ),
    (
        10,
        Kind::Dependency,
        r"can only install packages when your package\.json and package-lock\.json|Missing: \S+ from lock file|lockfile needs to be updated|frozen-lockfile",
    ),
    (5, Kind::Generic, r"^npm (?:ERR!|error) \S"),
    (
        10,
        Kind::Dependency,
        r#"^error An unexpected error occurred: |^error Couldn't find package|Request failed \\?"\d{3}"#,
    ),
    (6, Kind::Generic, r"^error \S"),
    (
        10,
        Kind::Dependency,
        r"ERR_PNPM_(?:FETCH_\d+|NO_MATCHING_VERSION|OUTDATED_LOCKFILE|PEER_DEP|LOCKFILE|NO_OFFLINE|META_FETCH|TARBALL)",
    ),
    (5, Kind::Generic, r"ERR_PNPM_\w+"),
    (
        10,
        Kind::Dependency,
        r"Could not find a version that satisfies the requirement|No matching distribution found for|ResolutionImpossible|Cannot install .* because these package versions have conflicting dependencies",
    ),
    (
        8,
        Kind::Dependency,
        r"Failed building wheel for|Failed to build \S+|error: subprocess-exited-with-error",
    ),
    (
        10,
        Kind::Dependency,
        r"Could not resolve dependencies for project|Could not transfer artifact|Failed to collect dependencies|Non-resolvable parent POM|Could not find artifact",
    ),
    (
        9,
        Kind::Dependency,
        r"Could not resolve all (?:files|dependencies|artifacts) for configuration|^\s+> Could not (?:find|resolve) \S+",
    ),
    (
        10,
        Kind::Dependency,
        r"failed to select a version for|no matching package named|failed to get `.*` as a dependency|failed to download from",
    ),
    (
        10,
        Kind::Dependency,
        r"unknown revision|cannot find module providing package|missing go\.sum entry|^go: \S+: reading .*: (?:404|410)|go: downloading .*: (?:404|410)",
    ),
    (
        10,
        Kind::Dependency,
        r"Could not find gem|Bundler could not find compatible versions|Your requirements could not be resolved|Your lock file does not contain a compatible set",
    ),
    (10, Kind::Dependency, r"error NU\d{4}:"),
    (
        10,
        Kind::Dependency,
        r"YN\d{4}: .*(?:No candidates found|couldn't be found|Request failed|Response Code: [45]\d\d)",
    ),
    (8, Kind::Generic, r"➤ YN0(?:00[1-9]|0[1-9]\d|[1-9]\d\d): "),
    (
        7,
        Kind::Dependency,
        r"\b(?:429 Too Many Requests|502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out|ECONNRESET|ETIMEDOUT|EAI_AGAIN|getaddrinfo ENOTFOUND)\b",
    ),
    // --- infrastructure: CloudFormation / CDK / Terraform / docker ---
    (
        10,
        Kind::Infrastructure,
        r"\b(?:CREATE|UPDATE|DELETE|IMPORT)_FAILED\b",
    ),
    (
        6,
        Kind::Infrastructure,
        r"\b(?:UPDATE_)?ROLLBACK_(?:IN_PROGRESS|COMPLETE|FAILED)\b",
    ),
    (
        10,
        Kind::Infrastructure,
        r"❌ .* failed: |Resource handler returned message:|The stack named \S+ failed|is in \w+_FAILED state",
    ),
    (
        10,
        Kind::Infrastructure,
        r"is not authorized to perform|\bAccessDenied(?:Exception)?\b|\bUnauthorizedOperation\b|\bInvalidClientTokenId\b|\bExpiredToken(?:Exception)?\b",
    ),
    (
        8,
        Kind::Infrastructure,
        r"ValidationError|Template format error|Unresolved resource dependencies|LimitExceededException|ServiceQuotaExceeded",
    ),
    (
        10,
        Kind::Infrastructure,
        r"^│ Error: |^Error: (?:creating|updating|deleting|reading) ",
    ),
    (
        10,
        Kind::Infrastructure,
        r"no space left on device|Cannot connect to the Docker daemon|pull access denied|manifest unknown|toomanyrequests: You have reached your pull rate limit",
    ),
    (
        8,
        Kind::Generic,
        r"failed to solve: |^ERROR: failed to (?:solve|build)|did not complete successfully: exit code",
    ),
    (
        6,
        Kind::Generic,
        r"^#\d+ (?:\S+ )?ERROR:? |^ERROR \[.*\d+/\d+\]",
    ),
    // --- AWS throttling ---
    (
        10,
        Kind::Throttling,
        r"ThrottlingException|Throttling: Rate exceeded|\bRate exceeded\b|TooManyRequestsException|RequestLimitExceeded|ProvisionedThroughputExceeded|RequestThrottled|\bSlowDown\b",
    ),
    // --- timeouts ---
    (
        9,
        Kind::Timeout,
        r"Build timed out|State: TIMED_OUT|has exceeded the maximum execution time|execution took longer than|No output has been received in the last|exceeded the maximum time limit for jobs",
    ),
    // --- security scans and coverage thresholds (for the excerpt; the class needs more) ---
    (
        9,
        Kind::Security,
        r"Check was not compliant|Number of non-compliant resources|Status = FAIL$|^FAILED rules$",
    ),
    (
        8,
        Kind::Security,
        r"found \d+ (?:\w+ severity )?vulnerabilit|^\d+ (?:\w+ severity )?vulnerabilit(?:y|ies)\b|^Severity: (?:high|critical)",
    ),
    (
        10,
        Kind::Coverage,
        r"coverage threshold for \w+ \([\d.]+%\) not met|Coverage for \w+ \([\d.]+%\) does not meet|Required test coverage of [\d.]+% not reached|Rule violated for bundle|coverage checks have not been met|Coverage: [\d.]+% \(threshold [\d.]+%\)",
    ),
    // --- generic errors ---
    (
        10,
        Kind::Generic,
        r"Segmentation fault|core dumped|SIGSEGV|SIGABRT|OutOfMemoryError|JavaScript heap out of memory|\bOOMKilled\b",
    ),
    (
        9,
        Kind::Generic,
        r"^Exception in thread|command not found|^fatal error: |: not found$",
    ),
    (
        8,
        Kind::Generic,
        r"^\s*(?:[\w$]+\.)*[\w$]*(?:Error|Exception)(?::\s|$)|^\s*Caused by: |^\s*(?:Uncaught|Unhandled) |\bfatal: ",
    ),
    (
        8,
        Kind::Generic,
        r"\[ERROR\] Failed to execute goal|^Execution failed for task|^> Task \S+ FAILED$|^\* What went wrong:",
    ),
    (
        7,
        Kind::Generic,
        r"^\s*Error: |^ERROR: |^FATAL:? |^\[ERROR\] \S|^\s*error: |(?i)^\s*\[?error\]?:? \S",
    ),
    (
        6,
        Kind::Generic,
        r"Traceback \(most recent call last\)|No such file or directory|Permission denied|^make(?:\[\d+\])?: \*\*\* |\bBUILD FAILURE\b|^BUILD FAILED|^FAILURE: Build failed",
    ),
    (3, Kind::Generic, r"(?i)\b(?:error|errors|exception)\b"),
    (
        3,
        Kind::Generic,
        r"exit (?:code|status) [1-9]|returned non-zero exit status",
    ),
    (2, Kind::Generic, r"(?i)\bfail(?:ed|ure|ures|s|ing)?\b"),
    (
        2,
        Kind::Generic,
        r"^\s+at \S|^\s+File .*, line \d+|^\s+\.\.\. \d+ more$",
    ),
    // --- caps ---
    (
        1,
        Kind::Boilerplate,
        r"\[ERROR\] (?:To see the full stack trace|Re-run Maven|For more information about the errors|\[Help \d\]|-> \[Help|After correcting the problems|\s*mvn <args>|\s*$)|\[ERROR\] *$",
    ),
    (
        1,
        Kind::Boilerplate,
        r"^npm (?:ERR!|error) (?:A complete log of this run|This is probably not a problem|Failed at the|errno|syscall|path |code ELIFECYCLE|Exit status|command failed|command sh -c|\s*$|Lifecycle script|[\w@/.-]+ \w+: `)|^npm (?:ERR!|error) *$",
    ),
    (
        1,
        Kind::Boilerplate,
        r"^error Command failed with exit code|^info Visit https://yarnpkg|^\* Try:|^> Run with --|^> Get more help|^Run with --(?:stacktrace|info|debug|scan)|^\* Get more help|^BUILD SUCCESS|Failures: 0, Errors: 0|\b0 (?:failed|failures|errors)\b|^\s*ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL|Process completed with exit code|Command did not exit successfully|Phase context status code|exited with \d+\.?$|^ERROR: Job failed|^ERROR: script returned exit code",
    ),
    (
        2,
        Kind::Quiet,
        r"^(?:npm WARN|npm warn|warning:? |WARNING:? |\[WARNING\]|WARN |\[WARN\]|⚠)|^\s*(?:Downloading|Downloaded|Download|Progress \(\d+\)|Resolving|Fetching|Receiving objects|Unpacking|Collecting|Requirement already satisfied)\b",
    ),
];

struct Table {
    set: RegexSet,
}

fn table() -> &'static Table {
    static TABLE_SET: OnceLock<Table> = OnceLock::new();
    TABLE_SET.get_or_init(|| Table {
        set: RegexSet::new(TABLE.iter().map(|(_, _, p)| *p)).expect("patterns are valid"),
    })
}

/// How telling a line is (0–10) and what it is evidence of. `None` for noise.
pub fn score(text: &str) -> Option<(u8, Kind)> {
    if text.trim().is_empty() {
        return None;
    }
    let mut best: Option<(u8, Kind)> = None;
    let mut cap = u8::MAX;
    for i in table().set.matches(text).iter() {
        let (score, kind, _) = TABLE[i];
        match kind {
            Kind::Boilerplate | Kind::Quiet => cap = cap.min(score),
            _ => {
                let better = match best {
                    None => true,
                    // On a tie a tool-specific kind beats a generic one.
                    Some((s, k)) => score > s || (score == s && k == Kind::Generic),
                };
                if better {
                    best = Some((score, kind));
                }
            }
        }
    }
    let (score, kind) = best?;
    let score = score.min(cap);
    (score > 0).then_some((score, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_lines_score_high_and_boilerplate_low() {
        let s = |t: &str| score(t).map_or(0, |(s, _)| s);
        let k = |t: &str| score(t).map(|(_, k)| k);
        assert_eq!(s("    --- FAIL: TestParse (0.00s)"), 10);
        assert_eq!(
            k("src/a.ts(12,5): error TS2322: Type 'string' is not assignable"),
            Some(Kind::Compile)
        );
        assert_eq!(k("npm ERR! code E404"), Some(Kind::Dependency));
        assert_eq!(
            s("[ERROR] Re-run Maven using the -X switch to enable full debug logging."),
            1
        );
        assert_eq!(s("npm ERR! A complete log of this run can be found in:"), 1);
        assert_eq!(s("Downloading https://repo/x.jar"), 0);
        assert_eq!(s("[INFO] Building foo 1.0"), 0);
        assert_eq!(k("An error occurred (ThrottlingException) when calling the X operation: Rate exceeded"), Some(Kind::Throttling));
        assert_eq!(s("Tests run: 5, Failures: 0, Errors: 0, Skipped: 0"), 1);
    }

    #[test]
    fn other_ecosystems_test_runners_are_test_evidence() {
        for line in [
            "[error] Failed tests:",
            "  1) Failure:",
            "3 runs, 5 assertions, 1 failures, 0 errors, 0 skips",
            "  1) test parses the header (ParserTest)",
            "12 tests, 2 failures",
            "The following tests FAILED:",
            "/src/AppTests.swift:12: error: -[AppTests.AppTests testLogin] : XCTAssertEqual failed: (\"1\") is not equal to (\"2\")",
            "FAIL in (parse-test) (core_test.clj:10)",
            "#   Failed test 'parses'",
            "Some tests failed.",
            "* checking tests ... ERROR",
        ] {
            assert_eq!(score(line).map(|(_, k)| k), Some(Kind::Test), "{line}");
        }
        assert_eq!(
            score("The job exceeded the maximum time limit for jobs, and has been terminated.")
                .map(|(_, k)| k),
            Some(Kind::Timeout)
        );
        assert!(score("0 tests, 0 failures").is_none_or(|(s, _)| s <= 1));
    }
}
