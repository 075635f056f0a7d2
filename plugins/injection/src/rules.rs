//! The phrase rules: one ASCII regex each over normalised text, with the
//! keywords it is searched around and a base score.
//!
//! Patterns use two shorthands, expanded by [`expand`]: `~` is a gap between
//! words (1 to 6 bytes of anything but `[a-z0-9]`), and `~W<n>` is a gap
//! that may hold up to n further words. So `ignore~W4instructions` matches
//! "ignore all of the previous instructions" and "ignore, instructions".

/// What a finding is about; its `as_str` is the finding's `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A phrase telling the model to drop its instructions or take new ones.
    InstructionOverride,
    /// A fake conversation turn (`System:`, `### Assistant:`).
    RoleSpoofing,
    /// A chat-template token or a fake end of a tool-result block.
    DelimiterSpoofing,
    /// Zero-width characters or bidi controls.
    HiddenText,
    /// Text written in Unicode tag characters (invisible ASCII).
    TagSmuggling,
    /// Base64, hex or percent-encoded text that decodes to an injection.
    EncodedPayload,
    /// A known jailbreak prompt or persona.
    Jailbreak,
    /// A request to send conversation data or secrets somewhere.
    ExfiltrationRequest,
}

impl Kind {
    /// The stable, machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::InstructionOverride => "instruction-override",
            Kind::RoleSpoofing => "role-spoofing",
            Kind::DelimiterSpoofing => "delimiter-spoofing",
            Kind::HiddenText => "hidden-text",
            Kind::TagSmuggling => "tag-smuggling",
            Kind::EncodedPayload => "encoded-payload",
            Kind::Jailbreak => "jailbreak",
            Kind::ExfiltrationRequest => "exfiltration-request",
        }
    }

    /// Whether the kind is about what the text says (rather than how it is
    /// hidden): these are the kinds searched for in decoded text, and the
    /// ones a discussion of prompt injection discounts.
    pub fn is_phrase(self) -> bool {
        matches!(
            self,
            Kind::InstructionOverride
                | Kind::RoleSpoofing
                | Kind::DelimiterSpoofing
                | Kind::Jailbreak
                | Kind::ExfiltrationRequest
        )
    }
}

/// A check run on a match after the regex, which may change its score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The score stands.
    None,
    /// Needs a qualifier naming the model's instructions (`previous`,
    /// `all`, `your`, `system`…); a first-person `my` reads as a person
    /// correcting themselves.
    Qualifier,
    /// Needs words about AI models somewhere in the string (`developer
    /// mode` is also a phone setting; `jailbroken` also a phone).
    AiContext,
    /// Needs a destination (URL, address, webhook) after the match.
    Destination,
    /// A tag followed by another tag is XML data, not a turn marker.
    NotXml,
    /// A chat-template token: code and documentation about templates quote
    /// them, so quoting and template words weigh more.
    Template,
}

/// One phrase rule.
#[derive(Debug)]
pub struct Rule {
    /// Stable id, named in messages.
    pub id: &'static str,
    /// The finding kind.
    pub kind: Kind,
    /// What the rule finds, for messages.
    pub title: &'static str,
    /// The regex over normalised text (shorthands: module documentation).
    pub pattern: &'static str,
    /// Lower-case keywords (words separated by one space, as normalised
    /// text has them); the regex runs only in windows around their
    /// occurrences, so each keyword must lie inside every match it is
    /// meant to find.
    pub keywords: &'static [&'static str],
    /// How many bytes before a keyword's first byte a match may start:
    /// small where the keywords open the phrase (verbs, tokens), larger
    /// where they close it (`… the user`). The regex runs from that far
    /// before each keyword to [`WINDOW_AFTER`] bytes after it.
    pub reach: usize,
    /// Score before context.
    pub score: f32,
    /// The context check.
    pub check: Check,
}

/// How far after a keyword a match may end. The longest matches, a URL
/// with a data slot and a verb separated from its object by six words, are
/// about 260 bytes.
pub const WINDOW_AFTER: usize = 320;

/// Expands the `~` and `~W<n>` shorthands of a pattern.
pub fn expand(pattern: &str) -> String {
    // A group, so that `~?` makes the whole gap optional.
    const GAP: &str = "(?:[^a-z0-9]{1,6})";
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut rest = pattern;
    while let Some(at) = rest.find('~') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let bytes = rest.as_bytes();
        if bytes.first() == Some(&b'W') && bytes.get(1).is_some_and(u8::is_ascii_digit) {
            let n = char::from(bytes[1]);
            out.push_str(&format!("(?:{GAP}[a-z0-9']+){{0,{n}}}?{GAP}"));
            rest = &rest[2..];
        } else {
            out.push_str(GAP);
        }
    }
    out.push_str(rest);
    out
}

/// The built-in rules.
pub static RULES: &[Rule] = &[
    // --- Instruction override (English) ---
    Rule {
        id: "ignore-instructions",
        kind: Kind::InstructionOverride,
        title: "instruction-override phrase",
        pattern: r"\b(?:ignor(?:e|es|ing)|disregard(?:s|ing)?|forget(?:ting)?|skip|bypass|override|overlook|neglect|drop|abandon|discard|set~aside|pay~no~attention~to|(?:do~not|don't|dont|stop|no~longer)~(?:follow|following|obey|obeying))~W4(?:instructions?|prompts?|directives?|directions|rules|guidelines|guidance|commands|orders|context|constraints|programming|training|system~(?:message|prompt)|tasks?)\b",
        keywords: &[
            "ignor",
            "disregard",
            "forget",
            "skip",
            "bypass",
            "override",
            "overlook",
            "neglect",
            "drop",
            "abandon",
            "discard",
            "set aside",
            "no attention",
            "not follow",
            "n't follow",
            "dont follow",
            "stop follow",
            "longer follow",
            "not obey",
            "n't obey",
            "dont obey",
            "stop obey",
            "longer obey",
        ],
        reach: 16,
        score: 0.9,
        check: Check::Qualifier,
    },
    Rule {
        id: "instructions-void",
        kind: Kind::InstructionOverride,
        title: "claim that earlier instructions no longer apply",
        pattern: r"\b(?:previous|prior|earlier|above|original|former|old|initial|safety|your)~W3(?:instructions?|prompts?|directives?|rules|guidelines)~W4(?:void|null|cancell?ed|revoked|obsolete|a~test|fake|overridden|no~longer~(?:apply|valid|in~effect|relevant)|changed)\b|\b(?:instructions?|prompts?|directives?|rules|guidelines)~you~(?:received|were~given|got)~W2(?:no~longer~(?:apply|valid|matter)|void|obsolete|cancell?ed)\b",
        keywords: &["instruction", "prompt", "directive", "rules", "guideline"],
        reach: 160,
        score: 0.8,
        check: Check::None,
    },
    Rule {
        id: "forget-everything",
        kind: Kind::InstructionOverride,
        title: "request to forget prior instructions",
        pattern: r"\bforget~(?:about~)?(?:everything|all~(?:of~)?(?:that|this|it|the~above)|what~(?:you~were|you~have~been|i~have|you~know)|your~(?:training|instructions|rules|programming|previous|prior|guidelines|prompt|system))",
        keywords: &["forget"],
        reach: 16,
        score: 0.85,
        check: Check::None,
    },
    Rule {
        id: "new-instructions",
        kind: Kind::InstructionOverride,
        title: "new instructions announced",
        pattern: r"\byour~(?:new|real|actual|true|updated|only)~(?:instructions?|task|objective|goal|mission|orders|directive|purpose|rules)(?:~?(?::|is\b|are\b|follows?\b|below\b|,|\.|;)|$)|\bnew~system~(?:message|prompt|instructions?|directive|policy)\b|\b(?:real|actual|true|hidden|secret)~(?:task|instructions?|objective|goal)~(?:is|are|\()|\bnew~(?:instructions?|directives?|orders|rules)~?:|\bnew~directive\b",
        keywords: &[
            "your new",
            "your real",
            "your actual",
            "your true",
            "your updated",
            "your only",
            "new system",
            "real task",
            "actual task",
            "true task",
            "hidden task",
            "secret task",
            "real instruction",
            "actual instruction",
            "true instruction",
            "hidden instruction",
            "secret instruction",
            "real objective",
            "real goal",
            "hidden objective",
            "secret objective",
            "new instruction",
            "new directive",
            "new order",
            "new rule",
        ],
        reach: 16,
        score: 0.75,
        check: Check::None,
    },
    Rule {
        id: "you-are-now",
        kind: Kind::InstructionOverride,
        title: "attempt to reassign the model's identity",
        pattern: r"\byou(?:~are|'re|re)~now~(?:an?~|the~|my~|in~)?(?:[a-z0-9'-]+~){0,3}?(?:ai|assistant|bot|chatbot|model|llm|persona|character|agent|hacker|dan|terminal|unrestricted|uncensored|unfiltered|jailbroken|evil|mode)\b|\byou(?:~are|'re|re)~no~longer~(?:bound|restricted|limited|constrained|an?~(?:ai|assistant|language~model)|required~to~follow|subject~to|chatgpt|claude)",
        keywords: &["are now", "'re now", "re now", "no longer"],
        reach: 16,
        score: 0.8,
        check: Check::None,
    },
    Rule {
        id: "from-now-on",
        kind: Kind::InstructionOverride,
        title: "standing instruction (from now on)",
        pattern: r"\bfrom~now~on~(?:you~(?:will|must|shall|are~to|should)~|you'll~)?(?:[a-z']+~){0,2}?(?:respond|answer|reply|act|behave|ignore|pretend|only|always|never|speak|talk|obey|output|write)\b",
        keywords: &["now on"],
        reach: 16,
        score: 0.7,
        check: Check::None,
    },
    Rule {
        id: "hide-from-user",
        kind: Kind::InstructionOverride,
        title: "instruction to keep something from the user",
        pattern: r"\b(?:do~not|don't|dont|never|without)~(?:tell(?:ing)?|inform(?:ing)?|notify(?:ing)?|mention(?:ing)?|reveal(?:ing)?|disclos(?:e|ing)|let(?:ting)?)~(?:(?:it|this|that|anything)~)?(?:to~)?the~(?:user|human|operator|customer)\b|\bkeep~(?:this|it)~(?:secret|hidden)~from~the~(?:user|human)|\b(?:do~not|don't|dont|never)~(?:reveal|disclose|mention|repeat|share)~(?:these|this|the|your|my)~(?:instructions?|prompt|system~prompt|message)\b",
        keywords: &[
            "the user",
            "the human",
            "the operator",
            "the customer",
            "instruction",
            "prompt",
            "message",
        ],
        reach: 160,
        score: 0.6,
        check: Check::None,
    },
    Rule {
        id: "prompt-leak",
        kind: Kind::InstructionOverride,
        title: "request to reveal the system prompt",
        pattern: r"\b(?:reveal|print|output|show|display|repeat|dump|leak|recite|disclose|tell~me|give~me|reply~with|respond~with)~(?:me~)?(?:your|the)~(?:(?:full|entire|hidden|initial|original|secret|complete|exact|whole)~){0,2}(?:system~prompt|system~message|hidden~instructions|initial~instructions|original~instructions|prompt|instructions|configuration)\b",
        keywords: &["prompt", "instruction", "configuration", "system message"],
        reach: 100,
        score: 0.7,
        check: Check::Qualifier,
    },
    Rule {
        id: "addressed-to-ai",
        kind: Kind::InstructionOverride,
        title: "message addressed to the AI reading the content",
        pattern: r"\b(?:note|message|instructions?|attention|important|update|notice|p\.s\.?)~(?:to|for)~(?:the~|all~|any~)?(?:ai|llm|language~model|ai~model|assistant|ai~assistant|agent|ai~agent|chatbot|summari[sz]er)s?\b|\b(?:attention|dear|hey)~(?:ai|llm|ai~assistant|ai~agent|chatgpt|claude|gemini|copilot)(?:~agents?|~assistants?|~models?)?\b|\bif~you~are~an?~(?:ai|llm|language~model|ai~assistant|ai~agent|ai~model|chatbot|bot|assistant)(?:~(?:reading|processing|summari[sz]ing|parsing|that~reads))?~?(?:,|;|:|you~must|you~should|please|then|ignore|do~not)|\b(?:ai|llm)~(?:assistants?|agents?|models?)~?:|\bthis~is~(?:an?~)?(?:instruction|message|order|directive)~from~(?:openai|anthropic|google|the~developers?|your~developers?|the~system|the~administrator|your~creators?)\b|\bi~am~your~(?:developer|creator|admin|administrator|owner|operator)\b|\b(?:the|your)~developers?~(?:says?|said|wants?|allows?|has~authori[sz]ed)\b|\b(?:user|developer|admin|administrator)~has~(?:authori[sz]ed|approved|allowed)~you\b",
        keywords: &[
            " ai ",
            " ai:",
            " ai,",
            " ai.",
            "ai: ",
            "ai assistant",
            "ai agent",
            "ai model",
            " ais ",
            "\nai ",
            "llm",
            "language model",
            "assistant",
            "agent",
            "chatbot",
            "summari",
            "chatgpt",
            "claude",
            "gemini",
            "copilot",
            "openai",
            "anthropic",
            "i am your",
            "developer say",
            "developers say",
            "developer said",
            "developer want",
            "developer allow",
            "developer has",
            "has authori",
            "has approved",
            "has allowed",
        ],
        reach: 160,
        score: 0.75,
        check: Check::None,
    },
    Rule {
        id: "disable-safety",
        kind: Kind::InstructionOverride,
        title: "attempt to switch off safety rules",
        pattern: r"\b(?:system|admin|developer|security|safety)~override\b|\b(?:safety|content|ethical|moral)~(?:filters?|restrictions|guidelines|rules|protocols|training|polic(?:y|ies)|checks)~(?:are~|have~been~|is~|were~)?(?:now~)?(?:disabled|lifted|removed|off|suspended|turned~off|deactivated)\b|\b(?:disable|turn~off|remove|bypass|ignore|skip|deactivate|lift)~(?:your~|the~|all~|any~)?(?:safety|content|ethical|moral)~(?:filters?|restrictions|guidelines|rules|protocols|training|polic(?:y|ies)|checks)\b|\byour~restrictions~(?:are|have~been)~(?:now~)?(?:lifted|removed|disabled|gone)\b",
        keywords: &[
            "override",
            "disabled",
            "lifted",
            "removed",
            "turned off",
            "suspended",
            "deactivated",
            "safety",
            "ethical",
            "moral",
            "content filter",
            "content polic",
            "content restriction",
            "content guideline",
            "content rule",
            "content check",
            "restrictions",
        ],
        reach: 160,
        score: 0.8,
        check: Check::None,
    },
    Rule {
        id: "special-mode",
        kind: Kind::Jailbreak,
        title: "switch to a mode without rules",
        pattern: r"\b(?:maintenance|unrestricted|god|admin|sudo|debug)~mode\b",
        keywords: &[
            "maintenance mode",
            "unrestricted mode",
            "god mode",
            "admin mode",
            "sudo mode",
            "debug mode",
        ],
        reach: 16,
        score: 0.7,
        check: Check::AiContext,
    },
    Rule {
        id: "obey-me",
        kind: Kind::InstructionOverride,
        title: "demand of obedience to the content's author",
        pattern: r"\b(?:obey|follow)~(?:only~)?(?:me|my~(?:commands|instructions|orders))\b(?:~only|~instead|,|\.|$)|\bobey~all~(?:my~)?commands\b|\bignore~the~user\b",
        keywords: &[
            "obey",
            "follow me",
            "follow only",
            "follow my",
            "ignore the user",
        ],
        reach: 16,
        score: 0.65,
        check: Check::None,
    },
    // --- Instruction override (other languages; accents are folded) ---
    Rule {
        id: "ignore-instructions-de",
        kind: Kind::InstructionOverride,
        title: "instruction-override phrase (German)",
        pattern: r"\b(?:ignorier(?:e|en|t)|vergiss|vergessen~sie|missachte(?:n|t)?|uberspring(?:e|en))~W4(?:anweisungen|anweisung|instruktionen|befehle|regeln|vorgaben|systemprompt|systemanweisungen|anordnungen|richtlinien)\b",
        keywords: &["ignorier", "vergiss", "vergessen", "missacht", "uberspring"],
        reach: 16,
        score: 0.9,
        check: Check::Qualifier,
    },
    Rule {
        id: "ignore-instructions-fr",
        kind: Kind::InstructionOverride,
        title: "instruction-override phrase (French)",
        pattern: r"\b(?:ignore[rz]?|oublie[rz]?|ne tiens pas compte|ne tenez pas compte|fais abstraction|faites abstraction)~W4(?:instructions|consignes|directives|regles|ordres|indications)\b",
        keywords: &["ignor", "oubli", "ne tiens", "ne tenez", "abstraction"],
        reach: 16,
        score: 0.9,
        check: Check::Qualifier,
    },
    Rule {
        id: "ignore-instructions-es-it-pt",
        kind: Kind::InstructionOverride,
        title: "instruction-override phrase (Spanish, Italian, Portuguese)",
        pattern: r"\b(?:ignora[rn]?|ignore|ignoren|olvida[rn]?|olvide|haz~caso~omiso~(?:de|a)|omite|descarta|desobedece|dimentica|esqueca)~W4(?:instrucciones|indicaciones|reglas|ordenes|directrices|normas|istruzioni|regole|direttive|instrucoes|regras|diretrizes)\b",
        keywords: &[
            "ignor",
            "olvid",
            "omiso",
            "omite",
            "descarta",
            "desobedece",
            "dimentica",
            "esqueca",
        ],
        reach: 16,
        score: 0.9,
        check: Check::Qualifier,
    },
    Rule {
        id: "reset-intl",
        kind: Kind::InstructionOverride,
        title: "request to forget instructions or take a new identity (German, French, Spanish)",
        pattern: r"\b(?:vergiss|vergessen~sie)~alles\b|\b(?:tu~es|vous~etes)~maintenant~(?:un|une)~(?:assistant|ia|ai|bot)\b|\bolvida~lo~que~te~(?:dijeron|han~dicho|dije)\b|\bahora~eres~(?:dan|un~(?:asistente|ia|bot)~sin)\b|\bdu~bist~(?:jetzt|nun|ab~sofort)~(?:dan|ein~(?:assistent|ki|bot)~ohne)\b",
        keywords: &[
            "vergiss",
            "vergessen",
            "maintenant",
            "olvida",
            "ahora",
            "bist",
        ],
        reach: 16,
        score: 0.85,
        check: Check::None,
    },
    // --- Delimiter and role spoofing ---
    Rule {
        id: "chat-template-token",
        kind: Kind::DelimiterSpoofing,
        title: "chat-template control token",
        pattern: r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text|end|channel|message|start|endofprompt)\|>|<(?:start|end)_of_turn>|<</?sys>>",
        keywords: &["<|", "_of_turn>", "sys>>"],
        reach: 16,
        score: 0.9,
        check: Check::Template,
    },
    Rule {
        id: "inst-token",
        kind: Kind::DelimiterSpoofing,
        title: "instruction-template marker",
        pattern: r"\[/?inst\]",
        keywords: &["inst]"],
        reach: 16,
        score: 0.75,
        check: Check::Template,
    },
    Rule {
        id: "system-tag",
        kind: Kind::DelimiterSpoofing,
        title: "system or instruction tag",
        pattern: r"</?(?:system|system_prompt|system_message|sys|instructions?|admin)>",
        keywords: &[
            "<system",
            "</system",
            "sys>",
            "<instruction",
            "</instruction",
            "admin>",
        ],
        reach: 16,
        score: 0.7,
        check: Check::NotXml,
    },
    Rule {
        id: "tool-block-close",
        kind: Kind::DelimiterSpoofing,
        title: "fake end of a tool-result block",
        pattern: r"</(?:tool_output|tool_outputs|tool_result|tool_response|tool_call_result|function_results?|function_response|search_results|observation|untrusted_content|external_content|document_content|user_input)>|<(?:function_calls|tool_call|tool_use)>",
        keywords: &["</", "<function", "<tool"],
        reach: 16,
        score: 0.85,
        check: Check::Template,
    },
    Rule {
        id: "end-of-results",
        kind: Kind::DelimiterSpoofing,
        title: "text announcing the end of a tool result",
        pattern: r"\bend~of~(?:the~)?(?:tool|function|search|web|api)~(?:output|outputs|results?|response|call)\b",
        keywords: &["end of"],
        reach: 16,
        score: 0.45,
        check: Check::None,
    },
    Rule {
        id: "role-line",
        kind: Kind::RoleSpoofing,
        title: "fake conversation turn",
        pattern: r"(?m)^[^a-z0-9\n]{0,4}(?:system|assistant|developer|human)[ \]]?:",
        keywords: &[
            "system:",
            "system :",
            "system]:",
            "assistant:",
            "assistant :",
            "assistant]:",
            "developer:",
            "developer :",
            "developer]:",
            "human:",
            "human :",
            "human]:",
        ],
        reach: 16,
        score: 0.4,
        check: Check::Template,
    },
    Rule {
        id: "bracket-role",
        kind: Kind::RoleSpoofing,
        title: "bracketed role marker",
        pattern: r"\[(?:system|assistant|developer)\](?:\(#[a-z_-]+\)|~?:)",
        keywords: &["system]", "assistant]", "developer]"],
        reach: 16,
        score: 0.7,
        check: Check::Template,
    },
    Rule {
        id: "role-header",
        kind: Kind::RoleSpoofing,
        title: "fake prompt-template section header",
        pattern: r"(?m)(?:^|~)#{2,4}~?(?:system|instructions?|assistant|response)~?:",
        keywords: &["##"],
        reach: 16,
        score: 0.6,
        check: Check::Template,
    },
    Rule {
        id: "system-message-label",
        kind: Kind::RoleSpoofing,
        title: "text posing as a system or administrator message",
        pattern: r"\b(?:system|admin|administrator|developer)~(?:message|note|notice|instruction|update|prompt|directive)s?~?:",
        keywords: &[
            "system message",
            "system note",
            "system notice",
            "system instruction",
            "system update",
            "system prompt",
            "system directive",
            "admin message",
            "admin note",
            "admin notice",
            "admin instruction",
            "admin update",
            "administrator message",
            "administrator note",
            "developer message",
            "developer note",
            "developer notice",
            "developer instruction",
            "developer update",
            "developer prompt",
            "developer directive",
        ],
        reach: 16,
        score: 0.45,
        check: Check::None,
    },
    // --- Jailbreaks ---
    Rule {
        id: "dan",
        kind: Kind::Jailbreak,
        title: "DAN jailbreak",
        pattern: r"\bdo~anything~now\b|\b(?:you~are|you're|act~as|pretend~to~be|become|enter|enable|activate|stay|as|called|named|play|ahora~eres|in~character~as)~dan\b|\bdan~(?:mode|prompt|jailbreak|can)\b",
        keywords: &["dan", "anything now"],
        reach: 40,
        score: 0.85,
        check: Check::None,
    },
    Rule {
        id: "jailbreak-persona",
        kind: Kind::Jailbreak,
        title: "known jailbreak persona",
        pattern: r"\b(?:betterdan|antigpt|anti-gpt|mongo~tom|evil~confidant|strive~to~avoid~norms|always~intelligent~and~machiavellian|dude~mode|opposite~mode)\b",
        keywords: &[
            "betterdan",
            "antigpt",
            "anti-gpt",
            "mongo",
            "confidant",
            "strive",
            "machiavellian",
            "dude",
            "opposite",
        ],
        reach: 40,
        score: 0.85,
        check: Check::None,
    },
    Rule {
        id: "developer-mode",
        kind: Kind::Jailbreak,
        title: "developer-mode jailbreak",
        pattern: r"\bdeveloper~mode\b",
        keywords: &["developer mode"],
        reach: 16,
        score: 0.85,
        check: Check::AiContext,
    },
    Rule {
        id: "unrestricted-ai",
        kind: Kind::Jailbreak,
        title: "request for an unrestricted persona",
        pattern: r"\b(?:unfiltered|uncensored|amoral|unrestricted|unethical|unbound|limitless|evil)~(?:[a-z]+~){0,2}?(?:ai|chatbot|assistant|model|persona|character|llm|version~of~yourself)\b|\byou~(?:have|are|now~have|will~have|now~are)~(?:absolutely~)?(?:no|free~(?:of|from)|not~bound~by|without)~(?:any~)?(?:ethical~|moral~)?(?:restrictions|limitations|limits|filters|rules|guidelines|boundaries|censorship)\b|\b(?:ai|assistant|chatbot|model|llm)~(?:[a-z']+~){0,3}?(?:with~no|without~any|without|free~from|that~has~no|that~ignores|who~ignores|ignores~all~of~its)~(?:[a-z]+~)?(?:restrictions|limitations|limits|filters?|filtering|censorship|guidelines|rules|ethics|morals|boundaries|safety)\b",
        keywords: &[
            "unfiltered",
            "uncensored",
            "amoral",
            "unrestricted",
            "unethical",
            "unbound",
            "limitless",
            "evil",
            "you have",
            "you are",
            "you now",
            "you will",
            "without",
            "with no",
            "free from",
            "free of",
            "has no",
            "ignores",
        ],
        reach: 160,
        score: 0.8,
        check: Check::None,
    },
    Rule {
        id: "jailbroken",
        kind: Kind::Jailbreak,
        title: "jailbreak claim",
        pattern: r"\bjailbr(?:oken|eak~mode|eaked)\b",
        keywords: &["jailbr"],
        reach: 16,
        score: 0.8,
        check: Check::AiContext,
    },
    Rule {
        id: "you-are-jailbroken",
        kind: Kind::Jailbreak,
        title: "claim that the model is jailbroken",
        pattern: r"\byou(?:~have~been|~are~now|~are|'re~now|'re)~jailbr(?:oken|eaked)\b",
        keywords: &["jailbr"],
        reach: 40,
        score: 0.85,
        check: Check::None,
    },
    // --- Exfiltration ---
    Rule {
        id: "send-data",
        kind: Kind::ExfiltrationRequest,
        title: "request to send conversation data or secrets elsewhere",
        pattern: r"\b(?:send|post|forward|upload|transmit|e-?mail|leak|exfiltrate|submit|copy|paste|append|attach|put|encode|publish|include|embed)~(?:[a-z0-9'._-]+~){0,6}?(?:conversation|chat~history|chat~log|api~keys?|apikeys?|credentials?|passwords?|secrets?|secret~tokens?|access~tokens?|tokens|system~prompt|previous~messages|last~[0-9]+~messages|user~data|private~data|ssh~keys?|id_rsa|\.env|env(?:ironment)?~variables|cookies|address~book|contacts|personal~data)\b",
        keywords: &[
            "conversation",
            "chat history",
            "chat log",
            "api key",
            "apikey",
            "credential",
            "password",
            "secret",
            "token",
            "system prompt",
            "messages",
            "user data",
            "private data",
            "ssh key",
            "id_rsa",
            ".env",
            "environment variable",
            "env variable",
            "cookies",
            "address book",
            "contacts",
            "personal data",
        ],
        reach: 160,
        score: 0.85,
        check: Check::Destination,
    },
    Rule {
        id: "url-template",
        kind: Kind::ExfiltrationRequest,
        title: "URL with a slot for conversation data",
        pattern: r"(?:https?://|www\.)[^\s)\]]{0,200}?[?&=/](?:\{|\[|<|%7b|\$\{?)~?(?:[a-z_]+~?){0,3}?(?:conversation|history|chat|secret|key|token|password|data|messages?|summary|context|user|email|prompt)",
        keywords: &["http", "www."],
        reach: 16,
        score: 0.85,
        check: Check::None,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_expand() {
        assert_eq!(expand("a~b"), "a(?:[^a-z0-9]{1,6})b");
        assert_eq!(expand("a~?b"), "a(?:[^a-z0-9]{1,6})?b");
        assert_eq!(
            expand("a~W2b"),
            "a(?:(?:[^a-z0-9]{1,6})[a-z0-9']+){0,2}?(?:[^a-z0-9]{1,6})b"
        );
    }

    #[test]
    fn ids_are_unique_and_keywords_lower_case() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            assert!(!rule.keywords.is_empty(), "{}", rule.id);
            for k in rule.keywords {
                assert_eq!(*k, k.to_ascii_lowercase(), "{}", rule.id);
            }
            assert!((0.0..=1.0).contains(&rule.score));
            assert!(rule.reach <= 160, "{}", rule.id);
        }
    }
}
