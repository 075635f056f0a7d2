// `jstext`: a Warden tool plugin written in JavaScript.
//
// Built into a WebAssembly component by componentize-js against the `tool`
// world of wit/plugin.wit (build.mjs; `cargo xtask plugins` runs it). The
// module exports one object per exported interface: `tools` implements
// `warden:plugin/tools`. A thrown `{ tag, val }` becomes the `tool-error`.

// At most 64 Ki characters: a slug is made from a title, not a document, and
// a longer text only costs memory (a 1 Mi-character text needs ~88 MiB).
const SLUGIFY_INPUT = {
  type: 'object',
  properties: { text: { type: 'string', maxLength: 65536 } },
  required: ['text'],
  additionalProperties: false,
};

const SLUGIFY_OUTPUT = {
  type: 'object',
  properties: { slug: { type: 'string', pattern: '^([a-z0-9]+(-[a-z0-9]+)*)?$' } },
  required: ['slug'],
  additionalProperties: false,
};

function invalid(message) {
  return { tag: 'invalid-input', val: message };
}

// The host validated the arguments against the schema; a plugin checks anyway.
function textArgument(args) {
  let parsed;
  try {
    parsed = JSON.parse(args);
  } catch (e) {
    throw invalid(`arguments: ${e.message}`);
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    Object.keys(parsed).length !== 1 ||
    typeof parsed.text !== 'string'
  ) {
    throw invalid('arguments: expected an object with exactly the string field `text`');
  }
  return parsed.text;
}

// ASCII letters and digits are kept, lowercased; every run of anything else
// becomes one `-`, and no `-` is left at either end. ASCII only, so a slug is
// safe in a URL path and does not depend on the engine's Unicode tables.
export function slugify(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

export const tools = {
  describe() {
    return [
      {
        name: 'slugify',
        description:
          'Turns a text into a URL slug: ASCII letters and digits lowercased, ' +
          'every run of other characters replaced by one `-`, no `-` at either end.',
        inputSchema: JSON.stringify(SLUGIFY_INPUT),
        outputSchema: JSON.stringify(SLUGIFY_OUTPUT),
        sideEffects: false,
        labels: [],
      },
    ];
  },

  invoke(name, args) {
    if (name !== 'slugify') {
      throw invalid(`unknown tool \`${name}\``);
    }
    return JSON.stringify({ slug: slugify(textArgument(args)) });
  },
};
