"use strict";
/*
 * The steps of a job (see run-job.js): one Runner per session, each "op" a method, values
 * encoded as JSON (status codes by name, NodeIds as strings, QualifiedNames with their
 * namespace URI).
 */

const opcua = require("node-opcua");

const {
    AttributeIds,
    BrowseDirection,
    ClientSubscription,
    ContentFilter,
    DataType,
    EventFilter,
    NodeClass,
    QualifiedName,
    SimpleAttributeOperand,
    StatusCode,
    TimestampsToReturn,
    Variant,
    VariantArrayType,
    coerceNodeId,
    resolveNodeId,
} = opcua;

const OBJECTS = "i=85";
const BASE_EVENT_TYPE = "i=2041";

function statusName(status) {
    if (status === undefined || status === null) return null;
    if (typeof status === "number") return StatusCode.makeStatusCode(status).name;
    return status.name;
}

function errorResult(err) {
    const message = err && err.message ? err.message : String(err);
    const found = message.match(/\b(Bad[A-Za-z]+)\b/);
    const response = err && err.response && err.response.responseHeader;
    const statusCode = response ? statusName(response.serviceResult) : found ? found[1] : null;
    return { ok: false, statusCode, error: message.split("\n")[0] };
}

class Runner {
    constructor(job, session, namespaces) {
        this.job = job;
        this.session = session;
        this.namespaces = namespaces; // the server's namespace array
        this.results = {};
        this.subscriptions = {};
    }

    nsIndex(alias) {
        const uri = (this.job.namespaces || {})[alias];
        if (uri === undefined) throw new Error(`unknown namespace alias ${alias}`);
        const index = this.namespaces.indexOf(uri);
        if (index < 0) throw new Error(`namespace ${uri} not in the server's namespace array`);
        return index;
    }

    qualifiedName(text) {
        const colon = text.indexOf(":");
        if (colon < 0) return new QualifiedName({ namespaceIndex: 0, name: text });
        return new QualifiedName({
            namespaceIndex: this.nsIndex(text.slice(0, colon)),
            name: text.slice(colon + 1),
        });
    }

    qualifiedJson(qn) {
        if (!qn) return null;
        return {
            namespaceUri: this.namespaces[qn.namespaceIndex] ?? null,
            name: qn.name,
        };
    }

    async resolve(ref) {
        if (typeof ref === "string") return coerceNodeId(ref);
        if (ref.nodeId !== undefined) return coerceNodeId(ref.nodeId);
        const start = ref.start !== undefined ? await this.resolve(ref.start) : coerceNodeId(OBJECTS);
        if (!ref.path || ref.path.length === 0) return start;
        const result = await this.session.translateBrowsePath({
            startingNode: start,
            relativePath: {
                elements: ref.path.map((name) => ({
                    referenceTypeId: resolveNodeId("HierarchicalReferences"),
                    isInverse: false,
                    includeSubtypes: true,
                    targetName: this.qualifiedName(name),
                })),
            },
        });
        if (result.statusCode.isNotGood() || !result.targets || result.targets.length === 0) {
            const err = new Error(`${ref.path.join("/")}: ${statusName(result.statusCode)}`);
            err.statusCode = statusName(result.statusCode);
            throw err;
        }
        return coerceNodeId(result.targets[0].targetId.toString());
    }

    toJson(value) {
        if (value === undefined || value === null) return null;
        if (typeof value === "bigint") return Number(value);
        if (typeof value !== "object") return value;
        if (value instanceof Date) return value.toISOString();
        if (Buffer.isBuffer(value)) return { $bytes: value.toString("base64") };
        if (ArrayBuffer.isView(value)) return Array.from(value, (v) => this.toJson(v));
        if (Array.isArray(value)) return value.map((v) => this.toJson(v));
        if (value instanceof Variant) {
            return {
                dataType: DataType[value.dataType],
                arrayType: VariantArrayType[value.arrayType],
                value: this.toJson(value.value),
            };
        }
        if (value instanceof StatusCode) return value.name;
        if (value instanceof QualifiedName) return this.qualifiedJson(value);
        if (value instanceof opcua.LocalizedText) return { locale: value.locale, text: value.text };
        if (value instanceof opcua.NodeId) return value.toString();
        if (value.schema && Array.isArray(value.schema.fields)) {
            const out = {};
            for (const field of value.schema.fields) out[field.name] = this.toJson(value[field.name]);
            return out;
        }
        return JSON.parse(JSON.stringify(value));
    }

    dataValue(dv, attribute) {
        const out = { statusCode: statusName(dv.statusCode) };
        if (dv.statusCode.isNotGood() && dv.statusCode.name !== "UncertainInitialValue") return out;
        const variant = dv.value;
        if (attribute === "Value") {
            out.dataType = DataType[variant.dataType];
            out.arrayType = VariantArrayType[variant.arrayType];
        }
        out.value = this.toJson(variant.value);
        if (attribute === "NodeClass") out.name = NodeClass[variant.value];
        return out;
    }

    substitute(value) {
        if (Array.isArray(value)) return value.map((v) => this.substitute(v));
        if (value === null || typeof value !== "object") return value;
        if (typeof value.$ref === "string") {
            const [id, ...parts] = value.$ref.split(".");
            let current = this.results[id];
            for (const part of parts) {
                if (current === undefined || current === null) break;
                current = current[/^\d+$/.test(part) ? Number(part) : part];
            }
            if (current === undefined) throw new Error(`$ref ${value.$ref} finds nothing`);
            return current;
        }
        const out = {};
        for (const [k, v] of Object.entries(value)) out[k] = this.substitute(v);
        return out;
    }

    variant(arg) {
        const dataType = DataType[arg.dataType];
        if (dataType === undefined) throw new Error(`unknown data type ${arg.dataType}`);
        let value = arg.value;
        if (arg.dataType === "NodeId") value = coerceNodeId(value);
        return new Variant({
            dataType,
            arrayType: arg.arrayType ? VariantArrayType[arg.arrayType] : undefined,
            value,
        });
    }

    async run(step) {
        const handler = this[`op_${step.op}`];
        if (!handler) throw new Error(`unknown op ${step.op}`);
        return handler.call(this, step);
    }

    async op_resolve(step) {
        return { nodeId: (await this.resolve(step.node)).toString() };
    }

    async browseAll(nodeId, step) {
        let result = await this.session.browse({
            nodeId,
            referenceTypeId: resolveNodeId(step.referenceType || "HierarchicalReferences"),
            browseDirection: BrowseDirection[step.direction || "Forward"],
            includeSubtypes: step.includeSubtypes !== false,
            nodeClassMask: step.nodeClassMask || 0,
            resultMask: 63,
        });
        const status = statusName(result.statusCode);
        const references = [...(result.references || [])];
        while (result.continuationPoint && result.continuationPoint.length > 0) {
            result = await this.session.browseNext(result.continuationPoint, false);
            references.push(...(result.references || []));
        }
        return {
            statusCode: status,
            references: references.map((r) => ({
                nodeId: r.nodeId.toString(),
                browseName: this.qualifiedJson(r.browseName),
                nodeClass: NodeClass[r.nodeClass],
                typeDefinition:
                    r.typeDefinition && !r.typeDefinition.isEmpty() ? r.typeDefinition.toString() : null,
                referenceType: r.referenceTypeId.toString(),
                isForward: r.isForward,
            })),
        };
    }

    async op_browse(step) {
        const nodeId = await this.resolve(step.node);
        return { nodeId: nodeId.toString(), ...(await this.browseAll(nodeId, step)) };
    }

    async op_tree(step) {
        // every node below `node` down to `depth` levels (breadth first), with the browse path
        // from `node`, and for variables the attributes asked for
        const root = await this.resolve(step.node);
        const nodes = [];
        let level = [{ nodeId: root, path: [] }];
        const seen = new Set([root.toString()]);
        for (let depth = 0; depth < (step.depth || 1) && level.length > 0; depth++) {
            const next = [];
            const browsed = await Promise.all(level.map((parent) => this.browseAll(parent.nodeId, step)));
            for (const [i, parent] of level.entries()) {
                for (const r of browsed[i].references) {
                    if (seen.has(r.nodeId)) continue;
                    seen.add(r.nodeId);
                    const entry = { ...r, parent: parent.nodeId.toString(), path: [...parent.path, r.browseName] };
                    nodes.push(entry);
                    next.push({ nodeId: coerceNodeId(r.nodeId), path: entry.path });
                }
            }
            level = next;
        }
        const attributes = step.attributes || [];
        const variables = nodes.filter((n) => n.nodeClass === "Variable");
        if (attributes.length > 0 && variables.length > 0) {
            const values = await this.session.read(
                variables.flatMap((n) =>
                    attributes.map((a) => ({ nodeId: coerceNodeId(n.nodeId), attributeId: AttributeIds[a] })),
                ),
            );
            variables.forEach((n, i) => {
                n.attributes = {};
                attributes.forEach((a, j) => {
                    n.attributes[a] = this.dataValue(values[i * attributes.length + j], a);
                });
            });
        }
        return { nodeId: root.toString(), nodes };
    }

    async op_supertypes(step) {
        // the type and its supertypes, following HasSubtype backwards to the root
        let nodeId = await this.resolve(step.node);
        const types = [];
        for (let i = 0; i < 32; i++) {
            const [name] = await this.session.read([{ nodeId, attributeId: AttributeIds.BrowseName }]);
            types.push({ nodeId: nodeId.toString(), browseName: this.qualifiedJson(name.value.value) });
            const { references } = await this.browseAll(nodeId, {
                referenceType: "HasSubtype",
                direction: "Inverse",
            });
            if (references.length === 0) break;
            nodeId = coerceNodeId(references[0].nodeId);
        }
        return { types };
    }

    async op_wait_value(step) {
        // reads the Value of `nodes` until one of them has `equals` (at `field` of the value,
        // e.g. "text" of a LocalizedText) or `timeoutMs` passes; returns the last values read
        const nodeIds = [];
        for (const ref of step.nodes) nodeIds.push(await this.resolve(ref));
        const deadline = Date.now() + (step.timeoutMs || 5000);
        for (;;) {
            const values = await this.session.read(
                nodeIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })),
            );
            const read = values.map((dv, i) => ({ nodeId: nodeIds[i].toString(), ...this.dataValue(dv, "Value") }));
            const pick = (v) => (step.field && v.value ? v.value[step.field] : v.value);
            const matched = read.filter((v) => JSON.stringify(pick(v)) === JSON.stringify(step.equals));
            if (matched.length > 0 || Date.now() >= deadline) {
                return { matched: matched.map((v) => v.nodeId), values: read };
            }
            await new Promise((resolve) => setTimeout(resolve, step.intervalMs || 50));
        }
    }

    async op_read(step) {
        const nodeId = await this.resolve(step.node);
        const attributes = step.attributes || ["Value"];
        const values = await this.session.read(
            attributes.map((a) => ({ nodeId, attributeId: AttributeIds[a] })),
        );
        const out = { nodeId: nodeId.toString(), attributes: {} };
        attributes.forEach((a, i) => {
            out.attributes[a] = this.dataValue(values[i], a);
        });
        const dataType = out.attributes.DataType;
        if (dataType && dataType.value) {
            // the data type's name, so a check need not know NodeIds
            const [name] = await this.session.read([
                { nodeId: coerceNodeId(dataType.value), attributeId: AttributeIds.BrowseName },
            ]);
            dataType.name = name.value.value ? name.value.value.name : null;
        }
        return out;
    }

    async op_write(step) {
        const nodeId = await this.resolve(step.node);
        const status = await this.session.write({
            nodeId,
            attributeId: AttributeIds[step.attribute || "Value"],
            value: { value: this.variant(step) },
        });
        return { nodeId: nodeId.toString(), statusCode: statusName(status) };
    }

    async op_call(step) {
        const objectId = await this.resolve(step.object);
        const methodId =
            typeof step.method === "string"
                ? await this.resolve({ start: { nodeId: objectId.toString() }, path: [step.method] })
                : await this.resolve(step.method);
        const result = await this.session.call({
            objectId,
            methodId,
            inputArguments: (step.inputArguments || []).map((a) => this.variant(a)),
        });
        return {
            objectId: objectId.toString(),
            methodId: methodId.toString(),
            statusCode: statusName(result.statusCode),
            inputArgumentResults: (result.inputArgumentResults || []).map(statusName),
            outputArguments: (result.outputArguments || []).map((v) => this.toJson(v.value)),
        };
    }

    async op_subscribe_events(step) {
        const subscription = ClientSubscription.create(this.session, {
            requestedPublishingInterval: step.publishingIntervalMs || 50,
            requestedLifetimeCount: 1000,
            requestedMaxKeepAliveCount: 20,
            maxNotificationsPerPublish: 0,
            publishingEnabled: true,
            priority: 1,
        });
        await new Promise((resolve, reject) => {
            subscription.once("started", resolve);
            subscription.once("internal_error", reject);
        });
        const fields = step.fields;
        const filter = new EventFilter({
            selectClauses: fields.map(
                (f) =>
                    new SimpleAttributeOperand({
                        typeDefinitionId: resolveNodeId(BASE_EVENT_TYPE),
                        browsePath: f.split("/").map((n) => this.qualifiedName(n)),
                        attributeId: AttributeIds.Value,
                    }),
            ),
            whereClause: new ContentFilter({ elements: [] }),
        });
        const record = { subscription, fields, events: [], waiters: [] };
        const items = [];
        for (const ref of step.nodes) {
            const nodeId = await this.resolve(ref);
            const item = await subscription.monitor(
                { nodeId, attributeId: AttributeIds.EventNotifier },
                { samplingInterval: 0, filter, queueSize: 10000, discardOldest: false },
                TimestampsToReturn.Both,
            );
            item.on("changed", (values) => {
                const event = { node: nodeId.toString(), fields: {} };
                fields.forEach((name, i) => {
                    const v = values[i];
                    event.fields[name.split(":").pop()] = v ? this.toJson(v.value) : null;
                });
                record.events.push(event);
                record.waiters.forEach((w) => w());
            });
            items.push({ nodeId: nodeId.toString(), statusCode: statusName(item.statusCode) });
        }
        this.subscriptions[step.id] = record;
        return { subscriptionId: subscription.subscriptionId, items };
    }

    async op_events(step) {
        const record = this.subscriptions[step.subscription];
        if (!record) throw new Error(`no subscription ${step.subscription}`);
        const match = step.match || {};
        const matching = () =>
            record.events.filter((e) =>
                Object.entries(match).every(
                    ([k, v]) => JSON.stringify(e.fields[k]) === JSON.stringify(v),
                ),
            );
        const count = step.count || Infinity;
        await new Promise((resolve) => {
            const timer = setTimeout(done, step.durationMs || 5000);
            function done() {
                clearTimeout(timer);
                record.waiters = record.waiters.filter((w) => w !== check);
                resolve();
            }
            function check() {
                if (matching().length >= count) done();
            }
            record.waiters.push(check);
            check();
        });
        return { events: matching(), received: record.events.length };
    }

    async op_wait(step) {
        await new Promise((resolve) => setTimeout(resolve, step.ms || 0));
        return {};
    }

    async close() {
        for (const record of Object.values(this.subscriptions)) {
            await record.subscription.terminate().catch(() => undefined);
        }
    }
}

module.exports = { Runner, errorResult, statusName };
