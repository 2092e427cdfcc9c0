// The Files lifecycle driven by the official openai-go SDK (v3). Run by
// test/clients/go-sdk.test.ts; reads its inputs from the environment and prints one JSON
// document, whose contract is test/clients/helpers/lifecycle.ts.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

type sdkError struct {
	Class   string  `json:"class"`
	Status  *int    `json:"status"`
	Code    *string `json:"code"`
	Param   *string `json:"param"`
	Message *string `json:"message"`
	Lines   []int   `json:"lines"`
}

type upload struct {
	Name string          `json:"name"`
	Via  string          `json:"via"`
	File json.RawMessage `json:"file"`
}

type content struct {
	ID     string `json:"id"`
	Bytes  int    `json:"bytes"`
	Sha256 string `json:"sha256"`
}

type refusals struct {
	Attempts       int      `json:"attempts"`
	Authentication int      `json:"authentication"`
	Connection     int      `json:"connection"`
	Other          []string `json:"other"`
}

type result struct {
	SDK             string              `json:"sdk"`
	Uploads         []upload            `json:"uploads"`
	Retrieved       []json.RawMessage   `json:"retrieved"`
	ListAsc         []string            `json:"list_asc"`
	ListDesc        []string            `json:"list_desc"`
	PagesAsc        []int               `json:"pages_asc"`
	PagesDesc       []int               `json:"pages_desc"`
	Contents        []content           `json:"contents"`
	Deleted         []json.RawMessage   `json:"deleted"`
	ListAfterDelete []string            `json:"list_after_delete"`
	Errors          map[string]sdkError `json:"errors"`
	Refusals        refusals            `json:"refusals"`
}

const boundary = "files-api-go-raw-boundary"

var ctx = context.Background()

func env(name string) string {
	value := os.Getenv(name)
	if value == "" {
		fail(fmt.Errorf("%s is not set", name))
	}
	return value
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func must[T any](value T, err error) T {
	if err != nil {
		fail(err)
	}
	return value
}

func ptr[T any](value T) *T { return &value }

// Retries off: a lost answer must show as the connection error it is, not be hidden
// by a second attempt that re-sends the whole file.
func newClient(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(env("FILES_API_BASE_URL")), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// openai-go has one error type for every status; a failure to get any answer is a
// *url.Error from net/http.
func describe(err error) sdkError {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		var body struct {
			Errors []struct {
				Line int `json:"line"`
			} `json:"errors"`
		}
		_ = json.Unmarshal([]byte(apiErr.RawJSON()), &body)
		lines := []int{}
		for _, entry := range body.Errors {
			lines = append(lines, entry.Line)
		}
		out := sdkError{Class: "openai.Error", Status: ptr(apiErr.StatusCode), Message: ptr(apiErr.Message), Lines: lines}
		// Absent or null in the answer is null here, as in the other SDKs' output.
		if apiErr.JSON.Code.Valid() {
			out.Code = ptr(apiErr.Code)
		}
		if apiErr.JSON.Param.Valid() {
			out.Param = ptr(apiErr.Param)
		}
		return out
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return sdkError{Class: "connection", Lines: []int{}}
	}
	return sdkError{Class: err.Error(), Lines: []int{}}
}

func failure[T any](_ T, err error) sdkError {
	if err == nil {
		fail(errors.New("expected the call to fail"))
	}
	return describe(err)
}

// The SDK writes its struct's fields in order, file before purpose: the other order is
// sent raw, still through the SDK (its auth, its errors, its typed answer).
func purposeFirst(client openai.Client, filename string, source io.Reader) *openai.FileObject {
	reader, writer := io.Pipe()
	form := multipart.NewWriter(writer)
	must(0, form.SetBoundary(boundary))
	go func() {
		err := form.WriteField("purpose", "batch")
		if err == nil {
			header := textproto.MIMEHeader{}
			header.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, filename))
			header.Set("Content-Type", "application/jsonl")
			var part io.Writer
			if part, err = form.CreatePart(header); err == nil {
				if _, err = io.Copy(part, source); err == nil {
					err = form.Close()
				}
			}
		}
		writer.CloseWithError(err)
	}()
	placeholder := openai.FileNewParams{File: openai.File(strings.NewReader(""), "unused", "application/jsonl"), Purpose: openai.FilePurposeBatch}
	return must(client.Files.New(ctx, placeholder, option.WithRequestBody(form.FormDataContentType(), reader)))
}

func listIDs(client openai.Client, order openai.FileListParamsOrder) ([]string, []int) {
	params := openai.FileListParams{Limit: openai.Int(2), Order: order}
	ids := []string{}
	iter := client.Files.ListAutoPaging(ctx, params)
	for iter.Next() {
		ids = append(ids, iter.Current().ID)
	}
	must(0, iter.Err())
	pages := []int{}
	for page := must(client.Files.List(ctx, params)); page != nil; page = must(page.GetNextPage()) {
		pages = append(pages, len(page.Data))
	}
	return ids, pages
}

func sdkVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/openai/openai-go/v3" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func main() {
	client := newClient(env("FILES_API_KEY"))
	wrong := newClient(env("FILES_API_WRONG_KEY"))
	samplePath, bigPath := env("FILES_API_SAMPLE"), env("FILES_API_BIG")
	repeats := must(strconv.Atoi(env("FILES_API_REPEATS")))
	sample := must(os.ReadFile(samplePath))
	open := func(path string) *os.File { return must(os.Open(path)) }

	stream1, stream2, big := open(samplePath), open(samplePath), open(bigPath)
	created := []struct {
		name, via string
		file      *openai.FileObject
	}{
		// An *os.File names the part after its base name.
		{"stream, file first", "sdk", must(client.Files.New(ctx, openai.FileNewParams{File: stream1, Purpose: openai.FilePurposeBatch}))},
		{"stream, purpose first", "raw multipart", purposeFirst(client, "test_model.jsonl", stream2)},
		{"bytes, file first", "sdk", must(client.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(sample), "bytes-file-first.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch}))},
		{"bytes, purpose first", "raw multipart", purposeFirst(client, "bytes-purpose-first.jsonl", bytes.NewReader(sample))},
		{"big stream", "sdk", must(client.Files.New(ctx, openai.FileNewParams{File: big, Purpose: openai.FilePurposeBatch}))},
	}
	stream1.Close()
	stream2.Close()
	big.Close()

	out := result{SDK: "openai-go " + sdkVersion(), Errors: map[string]sdkError{}, Refusals: refusals{Attempts: repeats, Other: []string{}}}
	ids := []string{}
	for _, upload := range created {
		ids = append(ids, upload.file.ID)
		out.Uploads = append(out.Uploads, uploadOf(upload.name, upload.via, upload.file))
	}
	for _, id := range ids {
		out.Retrieved = append(out.Retrieved, json.RawMessage(must(client.Files.Get(ctx, id)).RawJSON()))
	}
	out.ListAsc, out.PagesAsc = listIDs(client, openai.FileListParamsOrderAsc)
	out.ListDesc, out.PagesDesc = listIDs(client, openai.FileListParamsOrderDesc)
	for _, id := range ids {
		response := must(client.Files.Content(ctx, id))
		data := must(io.ReadAll(response.Body))
		response.Body.Close()
		digest := sha256.Sum256(data)
		out.Contents = append(out.Contents, content{ID: id, Bytes: len(data), Sha256: hex.EncodeToString(digest[:])})
	}

	out.Errors["wrong_key"] = failure(wrong.Files.Get(ctx, ids[0]))
	out.Errors["not_found"] = failure(client.Files.Get(ctx, "file-01J00000000000000000000000"))
	invalid := open(env("FILES_API_INVALID"))
	out.Errors["invalid_file"] = failure(client.Files.New(ctx, openai.FileNewParams{File: invalid, Purpose: openai.FilePurposeBatch}))
	invalid.Close()
	for _, id := range ids {
		out.Deleted = append(out.Deleted, json.RawMessage(must(client.Files.Delete(ctx, id)).RawJSON()))
	}
	out.Errors["deleted_again"] = failure(client.Files.Delete(ctx, ids[0]))
	out.ListAfterDelete, _ = listIDs(client, openai.FileListParamsOrderDesc)

	for i := 0; i < repeats; i++ {
		file := open(bigPath)
		seen := failure(wrong.Files.New(ctx, openai.FileNewParams{File: file, Purpose: openai.FilePurposeBatch}))
		file.Close()
		switch {
		case seen.Class == "openai.Error" && seen.Status != nil && *seen.Status == 401:
			out.Refusals.Authentication++
		case seen.Class == "connection":
			out.Refusals.Connection++
		default:
			out.Refusals.Other = append(out.Refusals.Other, seen.Class)
		}
	}
	must(0, json.NewEncoder(os.Stdout).Encode(out))
}

func uploadOf(name, via string, file *openai.FileObject) upload {
	return upload{Name: name, Via: via, File: json.RawMessage(file.RawJSON())}
}
