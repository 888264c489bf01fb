"""TensorFlow's (and tf_keras') protocol buffer messages as data: the fields lstm-inspect reads.

Field numbers are those of the .proto files named beside each message (TensorFlow 2.21, tf_keras
2.21); a field not listed is skipped when decoding. protobuf.decode() reads the binary form and
prototext.decode() the text form, both from this one table.
"""

from __future__ import annotations

from .protobuf import Field

__all__ = ["DATA_TYPES", "ENUMS", "SCHEMA"]

_S, _R = "string", True


def _map(name: str, entry: str) -> Field:
    return Field(name, entry, repeated=True, map=True)


SCHEMA: dict[str, dict[int, Field]] = {
    # tensorflow/core/framework/graph.proto
    "GraphDef": {
        1: Field("node", "NodeDef", _R),
        2: Field("library", "FunctionDefLibrary"),
        3: Field("version", "int32"),
        4: Field("versions", "VersionDef"),
    },
    # tensorflow/core/framework/node_def.proto
    "NodeDef": {
        1: Field("name", _S),
        2: Field("op", _S),
        3: Field("input", _S, _R),
        4: Field("device", _S),
        5: _map("attr", "AttrEntry"),
    },
    "AttrEntry": {1: Field("key", _S), 2: Field("value", "AttrValue")},
    # tensorflow/core/framework/attr_value.proto (a oneof: one of these fields is set)
    "AttrValue": {
        1: Field("list", "ListValue"),
        2: Field("s", "bytes"),
        3: Field("i", "int64"),
        4: Field("f", "float"),
        5: Field("b", "bool"),
        6: Field("type", "enum:DataType"),
        7: Field("shape", "TensorShapeProto"),
        8: Field("tensor", "TensorProto"),
        9: Field("placeholder", _S),
        10: Field("func", "NameAttrList"),
    },
    "ListValue": {
        2: Field("s", "bytes", _R),
        3: Field("i", "int64", _R),
        4: Field("f", "float", _R),
        5: Field("b", "bool", _R),
        6: Field("type", "enum:DataType", _R),
        7: Field("shape", "TensorShapeProto", _R),
        8: Field("tensor", "TensorProto", _R),
        9: Field("func", "NameAttrList", _R),
    },
    "NameAttrList": {1: Field("name", _S), 2: _map("attr", "AttrEntry")},
    # tensorflow/core/framework/tensor.proto
    "TensorProto": {
        1: Field("dtype", "enum:DataType"),
        2: Field("tensor_shape", "TensorShapeProto"),
        3: Field("version_number", "int32"),
        4: Field("tensor_content", "bytes"),
        5: Field("float_val", "float", _R),
        6: Field("double_val", "double", _R),
        7: Field("int_val", "int32", _R),
        8: Field("string_val", "bytes", _R),
        9: Field("scomplex_val", "float", _R),
        10: Field("int64_val", "int64", _R),
        11: Field("bool_val", "bool", _R),
        12: Field("dcomplex_val", "double", _R),
        13: Field("half_val", "int32", _R),
        16: Field("uint32_val", "uint32", _R),
        17: Field("uint64_val", "uint64", _R),
    },
    # tensorflow/core/framework/tensor_shape.proto
    "TensorShapeProto": {2: Field("dim", "Dim", _R), 3: Field("unknown_rank", "bool")},
    "Dim": {1: Field("size", "int64"), 2: Field("name", _S)},
    # tensorflow/core/framework/function.proto
    "FunctionDefLibrary": {1: Field("function", "FunctionDef", _R)},
    "FunctionDef": {
        1: Field("signature", "OpDef"),
        3: Field("node_def", "NodeDef", _R),
        4: _map("ret", "StringEntry"),
    },
    "StringEntry": {1: Field("key", _S), 2: Field("value", _S)},
    # tensorflow/core/framework/op_def.proto
    "OpDef": {1: Field("name", _S), 2: Field("input_arg", "ArgDef", _R), 3: Field("output_arg", "ArgDef", _R)},
    "ArgDef": {1: Field("name", _S), 3: Field("type", "enum:DataType"), 4: Field("type_attr", _S)},
    # tensorflow/core/framework/versions.proto; tf_keras/protobuf/versions.proto has the same fields
    "VersionDef": {
        1: Field("producer", "int32"),
        2: Field("min_consumer", "int32"),
        3: Field("bad_consumers", "int32", _R),
    },
    # tensorflow/core/protobuf/meta_graph.proto
    "MetaGraphDef": {
        1: Field("meta_info_def", "MetaInfoDef"),
        2: Field("graph_def", "GraphDef"),
        4: _map("collection_def", "CollectionEntry"),
        7: Field("object_graph_def", "SavedObjectGraph"),
    },
    # stripped_op_list (2) is left out: it repeats every op's definition and can be large.
    "MetaInfoDef": {
        1: Field("meta_graph_version", _S),
        4: Field("tags", _S, _R),
        5: Field("tensorflow_version", _S),
        6: Field("tensorflow_git_version", _S),
    },
    "CollectionEntry": {1: Field("key", _S), 2: Field("value", "CollectionDef")},
    "CollectionDef": {1: Field("node_list", "NodeList"), 2: Field("bytes_list", "BytesList")},
    "NodeList": {1: Field("value", _S, _R)},
    "BytesList": {1: Field("value", "bytes", _R)},
    # tensorflow/core/framework/variable.proto (the trainable_variables collection holds these)
    "VariableDef": {
        1: Field("variable_name", _S),
        2: Field("initializer_name", _S),
        3: Field("snapshot_name", _S),
        4: Field("save_slice_info_def", "SaveSliceInfoDef"),
        5: Field("is_resource", "bool"),
        7: Field("trainable", "bool"),
    },
    "SaveSliceInfoDef": {
        1: Field("full_name", _S),
        2: Field("full_shape", "int64", _R),
        3: Field("var_offset", "int64", _R),
        4: Field("var_shape", "int64", _R),
    },
    # tensorflow/core/protobuf/saved_model.proto
    "SavedModel": {1: Field("saved_model_schema_version", "int64"), 2: Field("meta_graphs", "MetaGraphDef", _R)},
    # tensorflow/core/protobuf/saved_object_graph.proto. SavedObject's `kind` is a oneof; the kinds
    # read are listed, the others (function 6, bare_concrete_function 8, constant 9, resource 10,
    # captured_tensor 12, ...) only tell that a node is none of these.
    "SavedObjectGraph": {
        1: Field("nodes", "SavedObject", _R),
        2: _map("concrete_functions", "ConcreteFunctionEntry"),
    },
    "ConcreteFunctionEntry": {1: Field("key", _S), 2: Field("value", "SavedConcreteFunction")},
    # The object-graph nodes a function captures, in the order of its last input arguments.
    "SavedConcreteFunction": {2: Field("bound_inputs", "int32", _R)},
    "SavedObject": {
        1: Field("children", "ObjectReference", _R),
        4: Field("user_object", "SavedUserObject"),
        7: Field("variable", "SavedVariable"),
    },
    "ObjectReference": {1: Field("node_id", "int32"), 2: Field("local_name", _S)},
    "SavedUserObject": {1: Field("identifier", _S), 2: Field("version", "VersionDef"), 3: Field("metadata", _S)},
    "SavedVariable": {
        1: Field("dtype", "enum:DataType"),
        2: Field("shape", "TensorShapeProto"),
        3: Field("trainable", "bool"),
        6: Field("name", _S),
    },
    # tensorflow/core/protobuf/trackable_object_graph.proto (the checkpoint's object graph)
    "TrackableObjectGraph": {1: Field("nodes", "TrackableObject", _R)},
    "TrackableObject": {
        1: Field("children", "ObjectReference", _R),
        2: Field("attributes", "SerializedTensor", _R),
        3: Field("slot_variables", "SlotVariableReference", _R),
    },
    "SerializedTensor": {1: Field("name", _S), 2: Field("full_name", _S), 3: Field("checkpoint_key", _S)},
    "SlotVariableReference": {
        1: Field("original_variable_node_id", "int32"),
        2: Field("slot_name", _S),
        3: Field("slot_variable_node_id", "int32"),
    },
    # tf_keras/protobuf/saved_metadata.proto (keras_metadata.pb; field 1 is reserved: an older
    # VersionDef)
    "SavedMetadata": {1: Field("nodes", "KerasObject", _R)},
    "KerasObject": {
        2: Field("node_id", "int32"),
        3: Field("node_path", _S),
        4: Field("identifier", _S),
        5: Field("metadata", _S),
        6: Field("version", "VersionDef"),
    },
}

# tensorflow/core/framework/types.proto: the DataType enum (reference types are these + 100,
# DT_FLOAT_REF = 101, ...). Names for the text format; tf_bundle.dtype_name gives numpy's names.
DATA_TYPES = {
    "DT_INVALID": 0, "DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5,
    "DT_INT8": 6, "DT_STRING": 7, "DT_COMPLEX64": 8, "DT_INT64": 9, "DT_BOOL": 10, "DT_QINT8": 11,
    "DT_QUINT8": 12, "DT_QINT32": 13, "DT_BFLOAT16": 14, "DT_QINT16": 15, "DT_QUINT16": 16,
    "DT_UINT16": 17, "DT_COMPLEX128": 18, "DT_HALF": 19, "DT_RESOURCE": 20, "DT_VARIANT": 21,
    "DT_UINT32": 22, "DT_UINT64": 23, "DT_FLOAT8_E5M2": 24, "DT_FLOAT8_E4M3FN": 25,
    "DT_FLOAT8_E4M3FNUZ": 26, "DT_FLOAT8_E4M3B11FNUZ": 27, "DT_FLOAT8_E5M2FNUZ": 28, "DT_INT4": 29,
    "DT_UINT4": 30, "DT_INT2": 31, "DT_UINT2": 32, "DT_FLOAT4_E2M1FN": 33,
}  # fmt: skip
DATA_TYPES.update({f"{name}_REF": code + 100 for name, code in list(DATA_TYPES.items()) if code})

ENUMS = {"DataType": DATA_TYPES}
