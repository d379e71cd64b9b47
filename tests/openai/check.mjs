// check.mjs - the official openai npm client, unchanged, against a running amuse serve.
// usage: node check.mjs <base URL ending in /v1> <infer key> <word-vector model name>
// Prints one "ok ..." or "FAIL ..." line per check and exits non-zero if any failed.
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
let failed = 0;
const check = (name, cond, detail) => {
  if (cond) console.log(`ok   openai client: ${name}`);
  else { failed++; console.log(`FAIL openai client: ${name}: ${detail}`); }
};
const close = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-6);

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });
try {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m);
  const w = ids.find((m) => m.id === model);
  check(`models.list() includes '${model}' (${ids.map((m) => m.id).join(", ")})`,
        w && w.object === "model" && w.owned_by === "amuse" && Number.isInteger(w.created),
        JSON.stringify(ids));

  const one_model = await client.models.retrieve(model);
  check(`models.retrieve('${model}')`,
        one_model.id === model && one_model.object === "model" && one_model.owned_by === "amuse" &&
        one_model.created === w.created, JSON.stringify(one_model));
  try {
    await client.models.retrieve("no-such-model");
    check("models.retrieve of an unknown model raises NotFoundError", false, "no error");
  } catch (e) {
    check(`models.retrieve of an unknown model raises NotFoundError: ${e.message}`,
          e instanceof OpenAI.NotFoundError && e.status === 404 && /no-such-model/.test(e.message),
          `${e.constructor.name}: ${e.message}`);
  }

  // Default encoding: the client asks for base64 and decodes it.
  const one = await client.embeddings.create({ model, input: "King, Queen!" });
  check(`embeddings.create(string) = mean of king and queen: [${one.data[0].embedding}]`,
        one.object === "list" && one.data.length === 1 && one.data[0].index === 0 &&
        close(Array.from(one.data[0].embedding), [1, 2, 3, 4.5]) &&
        one.usage.prompt_tokens === 2 && one.usage.total_tokens === 2,
        JSON.stringify(one));

  const list = await client.embeddings.create({ model, input: ["banana", "queen zebra"],
                                                encoding_format: "float" });
  check(`embeddings.create([2 strings], float): ${list.data.length} vectors, usage ${list.usage.prompt_tokens}`,
        list.data.length === 2 && list.data[1].index === 1 &&
        close(list.data[0].embedding, [-1, 0, 0.5, 2]) &&
        close(list.data[1].embedding, [1, 2, 3, 5]) && list.usage.prompt_tokens === 3 &&
        list.model === model,
        JSON.stringify(list));

  try {
    await client.embeddings.create({ model, input: "zebra okapi" });
    check("all-unknown input raises BadRequestError", false, "no error");
  } catch (e) {
    check(`all-unknown input raises BadRequestError: ${e.message}`,
          e instanceof OpenAI.BadRequestError && e.status === 400 &&
          /vocabulary/.test(e.message), `${e.constructor.name}: ${e.message}`);
  }

  const wrong = new OpenAI({ baseURL, apiKey: "amuse_0123456789ab_notarealsecretnotarealsecretnotarealsecre",
                             maxRetries: 0, timeout: 20000 });
  try {
    await wrong.models.list();
    check("a wrong key raises AuthenticationError", false, "no error");
  } catch (e) {
    check(`a wrong key raises AuthenticationError (${e.status}, code ${e.code})`,
          e instanceof OpenAI.AuthenticationError && e.status === 401 &&
          e.code === "invalid_api_key", `${e.constructor.name}: ${e.message}`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL openai client: unexpected ${e.constructor.name}: ${e.message}`);
}
process.exit(failed ? 1 : 0);
