/**
 * The Glue Data Catalog over the job's outputs (glue/CONTRACT.md): one database per stage and one table per kind of
 * output, each over its own top-level prefix. The tables themselves (names, columns, formats, partition projection)
 * are defined once in packages/core/src/catalog/tables.ts, which the twin also creates on its emulator; this file
 * only turns each into a Pulumi resource over the stage's data bucket.
 */
import {
  CATALOG_DATABASE_DESCRIPTION,
  CATALOG_TABLES,
  type CatalogTableDefinition,
  catalogDatabaseName,
  catalogTableInput,
  type GlueColumn,
  type GlueTableInput,
} from "../packages/core/src/catalog/tables";

export { catalogDatabaseName };

export interface CatalogInputs {
  readonly bucket: sst.aws.Bucket;
}

const column = (c: GlueColumn) => ({ name: c.Name, type: c.Type, ...(c.Comment ? { comment: c.Comment } : {}) });

/** The Glue API's TableInput in the Pulumi provider's spelling. */
function tableArgs(t: GlueTableInput) {
  const sd = t.StorageDescriptor;
  return {
    parameters: t.Parameters,
    storageDescriptor: {
      location: sd.Location,
      inputFormat: sd.InputFormat,
      outputFormat: sd.OutputFormat,
      serDeInfo: {
        serializationLibrary: sd.SerdeInfo.SerializationLibrary,
        ...(sd.SerdeInfo.Parameters ? { parameters: sd.SerdeInfo.Parameters } : {}),
      },
      columns: sd.Columns.map(column),
    },
  };
}

/** processed_rows → ProcessedRowsTable (the logical names the stack has always had). */
const logicalName = (t: CatalogTableDefinition) =>
  `${t.name.replace(/(^|_)([a-z])/g, (_m, _sep: string, c: string) => c.toUpperCase())}Table`;

export function createCatalog(inputs: CatalogInputs) {
  const { bucket } = inputs;
  const database = new aws.glue.CatalogDatabase("OutputCatalog", {
    name: catalogDatabaseName($app.name, $app.stage),
    description: CATALOG_DATABASE_DESCRIPTION,
  });
  const tables = Object.fromEntries(
    CATALOG_TABLES.map((t) => {
      const args = bucket.name.apply((name) => tableArgs(catalogTableInput(t, name)));
      const table = new aws.glue.CatalogTable(logicalName(t), {
        databaseName: database.name,
        name: t.name,
        description: t.description,
        tableType: "EXTERNAL_TABLE",
        parameters: args.parameters,
        ...(t.partitionKeys.length > 0
          ? { partitionKeys: t.partitionKeys.map((k) => ({ name: k.name, type: k.type })) }
          : {}),
        storageDescriptor: args.storageDescriptor,
      });
      return [t.name, table];
    }),
  );
  return { database, tables };
}
