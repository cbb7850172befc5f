/** SqsMessageVisibility (the crash lease's port), with the SDK client mocked: what it sends, and what it calls refused. */
import { createServer, type Socket } from "node:net";
import { ChangeMessageVisibilityBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { SqsMessageVisibility } from "../../src/sqs-visibility.js";

const sqs = mockClient(SQSClient);
const URL = "https://sqs.us-east-1.amazonaws.com/123456789012/csv-ingest-dev-IngestQueueQueue-abc";
const port = () => new SqsMessageVisibility(new SQSClient({ region: "us-east-1" }), URL);
const change = (id: string, seconds = 90) => ({ id, receiptHandle: `rh/${id}+=`, seconds });

beforeEach(() => {
  sqs.reset();
});

describe("SqsMessageVisibility", () => {
  it("sends one ChangeMessageVisibilityBatch with entry ids SQS accepts, whatever the message ids look like", async () => {
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Successful: [{ Id: "0" }, { Id: "1" }], Failed: [] });
    const refused = await port().change([change("a5c3-…/weird id", 90), change("m2", 180)]);
    expect(refused).toEqual([]);
    const sent = sqs.commandCalls(ChangeMessageVisibilityBatchCommand).map((c) => c.args[0].input);
    expect(sent).toEqual([
      {
        QueueUrl: URL,
        Entries: [
          { Id: "0", ReceiptHandle: "rh/a5c3-…/weird id+=", VisibilityTimeout: 90 },
          { Id: "1", ReceiptHandle: "rh/m2+=", VisibilityTimeout: 180 },
        ],
      },
    ]);
  });

  it("maps SQS's per-entry refusals back to message ids; an entry SQS did not answer for counts as refused", async () => {
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({
      Successful: [{ Id: "0" }],
      Failed: [{ Id: "2", Code: "ReceiptHandleIsInvalid", SenderFault: true }],
    });
    expect(await port().change([change("m0"), change("m1"), change("m2")])).toEqual(["m2", "m1"]);
  });

  it("throws when the call fails (the core logs it and goes on)", async () => {
    sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .rejects(Object.assign(new Error("Access denied"), { name: "AccessDenied" }));
    await expect(port().change([change("m0")])).rejects.toThrow("Access denied");
  });

  it("sends nothing for no change, takes exactly 10, and refuses more than SQS's 10 per call", async () => {
    expect(await port().change([])).toEqual([]);
    await expect(port().change(Array.from({ length: 11 }, (_, i) => change(`m${i}`)))).rejects.toThrow(
      "at most 10 visibility changes per call, not 11",
    );
    expect(sqs.commandCalls(ChangeMessageVisibilityBatchCommand)).toHaveLength(0);
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({
      Successful: Array.from({ length: 10 }, (_, i) => ({ Id: String(i) })),
      Failed: [],
    });
    expect(await port().change(Array.from({ length: 10 }, (_, i) => change(`m${i}`)))).toEqual([]);
  });

  it("a refusal for an entry id it did not send is named as such, not mapped onto a message", async () => {
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({
      Successful: [{ Id: "0" }],
      Failed: [{ Id: "7", Code: "InvalidParameterValue", SenderFault: true }],
    });
    expect(await port().change([change("m0")])).toEqual(["(entry 7)"]);
  });
});

describe("SqsMessageVisibility against an endpoint that never answers", () => {
  it("gives up after its call timeout, with the SDK's retries, instead of holding the invocation", async () => {
    sqs.restore();
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket); // accepts, reads, never answers
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port: tcp } = server.address() as { port: number };
    const client = new SQSClient({
      region: "us-east-1",
      endpoint: `http://127.0.0.1:${tcp}`,
      useQueueUrlAsEndpoint: false,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    try {
      const started = Date.now();
      await expect(new SqsMessageVisibility(client, URL, 300).change([change("m0")])).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      client.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
