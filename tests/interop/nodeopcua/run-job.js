#!/usr/bin/env node
"use strict";
/*
 * Runs one OPC UA job through node-opcua, a client stack independent of the server's, and prints
 * one JSON result on stdout. The job (JSON, as the first argument or on stdin) says how to
 * connect and which steps to run; the script only reports what the server answered (status
 * codes by name, values as JSON): the caller decides what is right.
 *
 * Job:
 *   endpoint            "opc.tcp://127.0.0.1:4840/linectl/"
 *   securityMode        "None" | "Sign" | "SignAndEncrypt"            (default "None")
 *   securityPolicy      "None" | "Basic256Sha256" | ...               (default "None")
 *   user                {"username": "...", "password": "..."} or null for anonymous
 *   certificate, privateKey   client certificate and key (PEM files)
 *   applicationUri      the URI in the client certificate
 *   pkiDir              folder for node-opcua's certificate store (created when missing)
 *   endpointMustExist   false: open the channel even when the server offers no such endpoint
 *   probeUnadvertised   true: let node-opcua also send what the server does not advertise (a
 *                      session on a channel whose security it does not offer, an anonymous or a
 *                      user name token its endpoint does not list), so that it is the server
 *                      that refuses, not the client; the result's "probed" says what was added
 *   namespaces          {"alias": "namespace URI"}: "alias:Name" in paths and event fields
 *   timeoutMs           for the whole job (default 60000)
 *   steps               list of steps, each with an optional "id" to refer to its result
 *
 * A node reference is {"nodeId": "ns=2;s=X"} or {"path": ["alias:Line", "alias:C1"],
 * "start": <node reference> (default Objects)}; a path follows hierarchical references forward.
 * A name without an alias is in namespace 0. Anywhere in a step, {"$ref": "stepId.a.0.b"} is
 * replaced by that part of an earlier step's result.
 *
 * Steps ("op"):
 *   resolve            node -> nodeId
 *   browse             node, referenceType (default HierarchicalReferences), direction
 *                      ("Forward" | "Inverse" | "Both"), nodeClassMask -> references
 *   read               node, attributes (["Value", "DataType", "ValueRank", ...]) -> attributes
 *   write              node, value, dataType ("Boolean", ...), arrayType -> statusCode
 *   call               object, method (a node reference, or "alias:Name" of a child of the
 *                      object), inputArguments [{"dataType", "value", "arrayType"}]
 *                      -> statusCode, inputArgumentResults, outputArguments
 *   subscribe_events   nodes, fields (["EventType", "alias:ItemId", ...]) -> monitored items
 *   events             subscription (id of a subscribe_events step), count, durationMs,
 *                      match ({"field": value}) -> the matching events, after `count` of them
 *                      or `durationMs`, whichever comes first
 *   tree               node, depth, referenceType, nodeClassMask, attributes -> nodes below
 *                      (each with its browse path from node and, for variables, the attributes)
 *   supertypes         node (a type) -> the type and its supertypes, nearest first
 *   wait_value         nodes, equals, field, timeoutMs -> matched (nodes whose Value, or its
 *                      `field`, equals `equals`), values (the last read)
 *   wait               ms
 */

// node-opcua writes diagnostics with console.*: keep stdout for the one JSON result
for (const name of ["log", "info", "warn", "debug"]) {
    console[name] = (...args) => console.error(...args);
}

const fs = require("fs");
const path = require("path");
const opcua = require("node-opcua");
const { Runner, errorResult } = require("./steps");

const {
    AttributeIds,
    MessageSecurityMode,
    OPCUACertificateManager,
    OPCUAClient,
    SecurityPolicy,
    UserTokenType,
} = opcua;

function readJob() {
    const text = process.argv[2] !== undefined ? process.argv[2] : fs.readFileSync(0, "utf8");
    return JSON.parse(text);
}


function clientOptions(job) {
    const options = {
        applicationName: "linectl-interop-nodeopcua",
        applicationUri: job.applicationUri || "urn:linectl:interop:nodeopcua",
        securityMode: MessageSecurityMode[job.securityMode || "None"],
        securityPolicy: SecurityPolicy[job.securityPolicy || "None"],
        endpointMustExist: job.endpointMustExist !== false,
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        requestedSessionTimeout: 60000,
        keepSessionAlive: false,
    };
    if (job.certificate) options.certificateFile = path.resolve(job.certificate);
    if (job.privateKey) options.privateKeyFile = path.resolve(job.privateKey);
    if (job.pkiDir) {
        options.clientCertificateManager = new OPCUACertificateManager({
            rootFolder: path.resolve(job.pkiDir),
            automaticallyAcceptUnknownCertificate: true,
        });
    }
    return options;
}

function offerUnadvertised(client) {
    // node-opcua only sends what the server's endpoint descriptions allow: add the channel's
    // endpoint and the token policies where they are missing (the ones node-opcua uses from here)
    const probed = [];
    const endpoints = client._serverEndpoints || [];
    if (endpoints.length === 0) return probed;
    let endpoint = client.findEndpointForSecurity(client.securityMode, client.securityPolicy);
    if (!endpoint) {
        endpoint = new opcua.EndpointDescription(endpoints[0]);
        endpoint.securityMode = client.securityMode;
        endpoint.securityPolicyUri = client.securityPolicy;
        endpoint.userIdentityTokens = endpoints[0].userIdentityTokens.map(
            (t) => new opcua.UserTokenPolicy(t),
        );
        endpoints.push(endpoint);
        probed.push(`endpoint ${MessageSecurityMode[client.securityMode]} ${client.securityPolicy}`);
    }
    for (const [type, policyId] of [
        [UserTokenType.Anonymous, "anonymous"],
        [UserTokenType.UserName, "username"],
    ]) {
        if (!endpoint.userIdentityTokens.some((t) => t.tokenType === type)) {
            endpoint.userIdentityTokens.push(new opcua.UserTokenPolicy({ policyId, tokenType: type }));
            probed.push(`token ${UserTokenType[type]}`);
        }
    }
    return probed;
}

function userIdentity(job) {
    if (!job.user) return { type: UserTokenType.Anonymous };
    return { type: UserTokenType.UserName, userName: job.user.username, password: job.user.password };
}

async function main() {
    const job = readJob();
    const out = { connect: null, session: null, namespaces: null, steps: [] };
    const client = OPCUAClient.create(clientOptions(job));
    let session = null;
    const timer = setTimeout(() => {
        out.timedOut = true;
        finish(out, 3);
    }, job.timeoutMs || 60000);
    try {
        try {
            await client.connect(job.endpoint);
            out.connect = {
                ok: true,
                securityMode: MessageSecurityMode[client.securityMode],
                securityPolicy: client.securityPolicy,
            };
            if (job.probeUnadvertised) out.probed = offerUnadvertised(client);
        } catch (err) {
            out.connect = errorResult(err);
            return out;
        }
        try {
            session = await client.createSession(userIdentity(job));
            out.session = { ok: true };
        } catch (err) {
            out.session = errorResult(err);
            return out;
        }
        const [ns] = await session.read([{ nodeId: "i=2255", attributeId: AttributeIds.Value }]);
        out.namespaces = ns.statusCode.isGood() ? Array.from(ns.value.value) : [];
        const runner = new Runner(job, session, out.namespaces);
        try {
            for (const raw of job.steps || []) {
                const entry = { id: raw.id ?? null, op: raw.op };
                try {
                    const step = runner.substitute(raw);
                    Object.assign(entry, { ok: true }, await runner.run(step));
                } catch (err) {
                    Object.assign(entry, errorResult(err));
                    if (err.statusCode) entry.statusCode = err.statusCode;
                }
                if (raw.id !== undefined) runner.results[raw.id] = entry;
                out.steps.push(entry);
            }
        } finally {
            await runner.close();
        }
        return out;
    } finally {
        clearTimeout(timer);
        if (session) await session.close().catch(() => undefined);
        await client.disconnect().catch(() => undefined);
    }
}

// a pipe is written asynchronously: exit once the whole result is out
function finish(result, code) {
    process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

main().then(
    (out) => finish(out, 0),
    (err) => finish({ fatal: errorResult(err) }, 2),
);
