// Validates ServiceMonitor and PrometheusRule objects with the schemas of the Prometheus
// Operator's CRDs, as compiled into @kubernetes-models/prometheus-operator (installed by
// `make tools` into .tools/node). Usage: node validate_prometheus_operator.mjs NODE_MODULES FILE
// where FILE holds a JSON array of objects. Prints a JSON array of problems ([] when all valid).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [nodeModules, file] = process.argv.slice(2);
const models = join(nodeModules, "@kubernetes-models/prometheus-operator/monitoring.coreos.com");
const load = async (version, kind) =>
  (await import(pathToFileURL(join(models, version, `${kind}.js`)).href))[kind];
const problems = [];
for (const object of JSON.parse(readFileSync(file, "utf8"))) {
  const [, version] = object.apiVersion.split("/");
  const where = `${object.kind}/${object.metadata?.name}`;
  let Model;
  try {
    Model = await load(version, object.kind);
  } catch (error) {
    problems.push(`${where}: no schema for ${object.apiVersion} ${object.kind}`);
    continue;
  }
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${where}: ${error.message}`);
  }
}
console.log(JSON.stringify(problems));
